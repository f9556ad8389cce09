#!/usr/bin/env bash
# Build every cargo-fuzz target and run each for TIME_PER_TARGET seconds (default 60), seeded from
# fuzz/seeds/<target>/ and growing fuzz/corpus/<target>/ (gitignored). Exits non-zero when a
# target finds a crash, a leak, an OOM or a timeout (the input lands in fuzz/artifacts/<target>/)
# or fails to build. Extra arguments after TIME_PER_TARGET are target names to run (default: all).
# TIME_PER_TARGET "build" only builds them.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP=1 lets the stable toolchain take
# the nightly-only sanitizer flags. Debug assertions (overflow checks) are on: an arithmetic
# overflow on hostile input is a finding too.
set -uo pipefail

TIME="${1:-60}"
shift || true
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
# libhdf5 recycles freed structures through its own free lists, so LeakSanitizer would name the
# first caller that ever malloc'd a block, not the one that lost it (a leaked datatype copy was
# reported as allocated by our H5Tcreate and by H5T__init_package's template, which is freed):
# without them every leak report has its real stack, and lsan.supp's entries match what they say.
export CFLAGS="${CFLAGS:+$CFLAGS }-DH5_NO_FREE_LISTS"
FLAGS=(-O -a)

if ! RUSTC_BOOTSTRAP=1 cargo fuzz build "${FLAGS[@]}"; then
    echo "run_all.sh: build failed" >&2
    exit 2
fi
# hdf5-metno-src's build script does not ask to rerun when CFLAGS change, so an older build
# without the define can survive in fuzz/target: rebuild libhdf5 then, and check it took.
caches() { ls fuzz/target/*/release/build/hdf5-metno-src-*/out/build/CMakeCache.txt 2>/dev/null; }
without_define() { caches | xargs -r grep -L -- -DH5_NO_FREE_LISTS; }
if [ -n "$(without_define)" ]; then
    triple=$(caches | head -1 | sed -E 's#^fuzz/target/([^/]+)/release/.*#\1#')
    cargo clean --manifest-path fuzz/Cargo.toml --release --target "$triple" -p hdf5-metno-src
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz build "${FLAGS[@]}" || [ -n "$(without_define)" ]; then
        echo "run_all.sh: libhdf5 was not built with -DH5_NO_FREE_LISTS" >&2
        exit 2
    fi
fi

[ "$TIME" = build ] && exit 0

if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo fuzz list)
fi

failed=()
summary=()
for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" fuzz/artifacts/logs
    seeds=()
    [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
    log="fuzz/artifacts/logs/$t.log"
    # libhdf5 (C) sizes some metadata buffers from the file and mallocs them before reading
    # (a 40 GB request from an 11 KB file): such a malloc fails (or stays untouched) and the read
    # ends in a clean FormatError, so for the targets that drive libhdf5 a huge malloc is not a
    # finding — NULL is returned as in production and the RSS limit still catches memory that is
    # actually used. Pure-Rust targets keep the 2 GB malloc limit.
    malloc_limit=2048
    asan="${ASAN_OPTIONS:-}"
    lsan="${LSAN_OPTIONS:-}"
    case "$t" in
        h5|keras_zip)
            malloc_limit=1048576
            # libhdf5 is built without frame pointers: the slow unwinder gives leak reports the
            # full stack the suppressions match on.
            asan="allocator_may_return_null=1:fast_unwind_on_malloc=0${asan:+:$asan}"
            # libhdf5's own small leak on malformed headers (see fuzz/lsan.supp); ours still count.
            lsan="suppressions=$PWD/fuzz/lsan.supp${lsan:+:$lsan}"
            ;;
    esac
    echo "=== $t (${TIME}s)"
    ASAN_OPTIONS="$asan" LSAN_OPTIONS="$lsan" cargo fuzz run "${FLAGS[@]}" "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$TIME" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb="$malloc_limit" \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    summary+=("$t: rc=$rc runs=${runs:-?} time=${TIME}s")
    if [ "$rc" -ne 0 ]; then
        failed+=("$t")
        grep -E "^(==[0-9]+== ERROR|SUMMARY|thread .* panicked|Failing input|\s+fuzz/artifacts/)" "$log" >&2
        tail -n 5 "$log" >&2
    fi
done

printf '%s\n' "--- summary" "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "run_all.sh: findings in: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
