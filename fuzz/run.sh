#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for N seconds each (default 30): bash fuzz/run.sh [N] [target...]
#
# - Does nothing (a note, exit 0) when no nightly toolchain is installed.
# - Installs cargo-fuzz if it is missing (cargo install cargo-fuzz --locked).
# - Seeds fuzz/corpus/<target>/ from tests/fixtures/, tests/regressions/, fuzz/seeds/grammar.txt and
#   the kept corpora fuzz/seeds/corpus/<target>.tar.xz (idempotent:
#   files are named by content hash; a corpus libFuzzer grew is kept and reused).
# - Exits non-zero when a target finds a crash; the input is in fuzz/artifacts/<target>/.
set -euo pipefail

SECONDS_PER_TARGET="${1:-30}"
shift || true
ALL_TARGETS=(review one_pass documents scope host reference import)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! command -v rustup >/dev/null 2>&1 || ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz/run.sh: no nightly toolchain (rustup toolchain list); skipping the fuzz targets."
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# Seed corpora. python3 converts the YAML fixtures to the JSON bytes the API server posts (with
# PyYAML; without it the YAML text itself is the seed) and collects string scalars for the grammars.
python3 - "$ROOT" <<'PY'
import hashlib, json, os, sys
root = sys.argv[1]
corpus = os.path.join(root, "fuzz", "corpus")
try:
    import yaml
except ImportError:
    yaml = None

def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest())
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)

strings = set()
def walk(v):
    if isinstance(v, str):
        strings.add(v)
    elif isinstance(v, dict):
        for k, x in v.items():
            walk(k); walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)

files = []
for base in ("tests/fixtures", "tests/regressions"):
    for dirpath, _, names in os.walk(os.path.join(root, base)):
        files += [os.path.join(dirpath, n) for n in sorted(names) if n.endswith((".yaml", ".yml", ".json"))]
for path in sorted(files):
    raw = open(path, "rb").read()
    put("documents", b"\x00" + raw)
    docs = []
    if path.endswith(".json"):
        try:
            docs = [json.loads(raw)]
        except ValueError:
            pass
    elif yaml is not None:
        try:
            docs = [d for d in yaml.safe_load_all(raw) if d is not None]
        except yaml.YAMLError:
            pass
    if not docs:
        put("review", raw)
        put("one_pass", raw)
    for d in docs:
        try:
            body = json.dumps(d, default=str, separators=(",", ":"))
        except (TypeError, ValueError):
            continue
        put("review", body)
        put("one_pass", body)
        put("documents", b"\x01" + body.encode())
        walk(d)

# The corpora kept from the long runs (fuzz/RESULTS.md), minimised with `cargo fuzz cmin` and
# stored as fuzz/seeds/corpus/<target>.tar.xz (tens of MB of inputs, a few hundred KB packed):
# they start every run where the last long one stopped.
import tarfile
kept = os.path.join(root, "fuzz", "seeds", "corpus")
if os.path.isdir(kept):
    for name in sorted(os.listdir(kept)):
        if not name.endswith(".tar.xz"):
            continue
        with tarfile.open(os.path.join(kept, name), "r:xz") as tar:
            for member in tar:
                if member.isfile():
                    data = tar.extractfile(member).read()
                    target = name[: -len(".tar.xz")]
                    put(target, data)
                    if target == "review":  # the same AdmissionReview bytes
                        put("one_pass", data)

# The minimised input of every finding, as it is, for its target.
regressions = os.path.join(root, "tests", "regressions")
for target in ("review", "one_pass", "documents", "scope", "host", "reference", "import"):
    d = os.path.join(regressions, target)
    if os.path.isdir(d):
        for n in sorted(os.listdir(d)):
            put(target, open(os.path.join(d, n), "rb").read())

for line in open(os.path.join(root, "fuzz", "seeds", "grammar.txt"), encoding="utf-8"):
    line = line.rstrip("\n")
    if not line.startswith("# "):
        strings.add(line)
for s in sorted(strings):
    if len(s) > 300:
        continue
    for target in ("scope", "host", "reference"):
        put(target, s)
    put("import", s)
    put("import", s + "\0" + s)
PY

status=0
for target in "${TARGETS[@]}"; do
    echo "fuzz/run.sh: ${target} for ${SECONDS_PER_TARGET}s"
    mkdir -p "fuzz/artifacts/${target}"
    if ! cargo +nightly fuzz run "${target}" "fuzz/corpus/${target}" -- \
        -max_total_time="${SECONDS_PER_TARGET}" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/${target}/"; then
        echo "fuzz/run.sh: ${target} FAILED; reproduce with: cargo +nightly fuzz run ${target} fuzz/artifacts/${target}/<file>"
        status=1
    fi
done
exit "$status"
