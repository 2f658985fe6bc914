# build_commit.cmake: writes build_commit.h with the source tree's git commit, at every build
# (cmake -P, from the mnistgan_build_commit target), and only when the text changes, so an
# unchanged commit rebuilds nothing. Inputs: SOURCE_DIR, OUTPUT.
set(commit "")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse HEAD WORKING_DIRECTORY ${SOURCE_DIR}
                  OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
                  RESULT_VARIABLE rev_parse_failed)
  if(rev_parse_failed)
    set(commit "")
  else()
    # Uncommitted changes to tracked files make the commit an approximation: say so.
    execute_process(COMMAND ${GIT_EXECUTABLE} status --porcelain --untracked-files=no
                    WORKING_DIRECTORY ${SOURCE_DIR} OUTPUT_VARIABLE dirty ERROR_QUIET)
    if(NOT dirty STREQUAL "")
      set(commit "${commit}-dirty")
    endif()
  endif()
endif()
set(text "// Written by cmake/build_commit.cmake at build time.\n#pragma once\nnamespace mnistgan {\ninline constexpr const char* kBuildCommit = \"${commit}\";  // \"\" outside a git checkout\n}\n")
if(EXISTS ${OUTPUT})
  file(READ ${OUTPUT} old)
else()
  set(old "")
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUTPUT} "${text}")
endif()
