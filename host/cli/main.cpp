// main.cpp: the mnistgan program (its commands are in cli.h): train the classic MLP GAN on
// MNIST and draw digits from it.
//   mnistgan train --data data/mnist --out runs/mnist
//   mnistgan sample --checkpoint runs/mnist/latest.ckpt --out digits.png
#include "cli/cli.h"

int main(int argc, char** argv) { return mnistgan::run_cli(argc, argv); }
