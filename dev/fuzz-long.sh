#!/usr/bin/env bash
# Runs every fuzz target of the packages given (default ./...) for FUZZTIME
# each (default 10m), one after another. A target that fails does not stop
# the run: the next target still gets its time, and the script exits 1 at
# the end, naming every target that failed. A summary table closes the
# output: package, target, wall time (compiling included), executions
# (from go test's last "execs:" progress line; "-" when it printed none)
# and the result.
#
# When a target fails, go test writes the input that failed under the
# package's testdata/fuzz/<Target>/; the summary prints that path. Once the
# bug is fixed, commit the file: plain `go test` runs it as a regression
# seed from then on.
#
# Logs of each run go to $FUZZ_LOG_DIR (default a fresh temporary
# directory), so a failure's output can be read after the summary.
set -uo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10m}
log_dir=${FUZZ_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/morax-fuzz.XXXXXX")}
mkdir -p "$log_dir"
module=$(go list -m)
pkgs=("$@")
[ ${#pkgs[@]} -eq 0 ] && pkgs=(./...)

rows=()
failed=()
for pkg in $(go list "${pkgs[@]}"); do
	# -list compiles the test binary; a package that does not build is a
	# failure of its own, not "no targets".
	if ! targets=$(go test -list '^Fuzz' "$pkg" 2>"$log_dir/list.err"); then
		cat "$log_dir/list.err" >&2
		rows+=("$pkg|(build)|-|-|FAIL: does not build")
		failed+=("$pkg (build)")
		continue
	fi
	for target in $(grep '^Fuzz' <<<"$targets"); do
		log="$log_dir/$(tr '/' '_' <<<"${pkg#github.com/}").$target.log"
		echo "== $pkg $target ($fuzztime, log $log)"
		start=$(date +%s)
		go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1
		rc=$?
		secs=$(($(date +%s) - start))
		# Progress lines read "fuzz: elapsed: 3s, execs: 1234 (411/sec), ...".
		execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
		# FUZZTIME counts the replay of the cached corpus too: a target
		# with a large corpus and a short FUZZTIME may never start fuzzing.
		if [ -z "$execs" ] && grep -q 'gathering baseline coverage' "$log"; then
			execs="0 (corpus replay only)"
		fi
		if [ "$rc" -eq 0 ]; then
			result=ok
		else
			seed=$(grep -o 'testdata/fuzz/[^ ]*' "$log" | tail -n 1)
			# go test names it relative to the package's directory.
			rel=${pkg#"$module"}
			[ -n "$seed" ] && seed=".$rel/$seed"
			result="FAIL${seed:+: found $seed}"
			failed+=("$pkg $target")
			tail -n 40 "$log"
		fi
		rows+=("$pkg|$target|${secs}s|${execs:--}|$result")
		echo "   $result after ${secs}s, ${execs:--} execs"
	done
done

echo
echo "fuzz:long summary (FUZZTIME=$fuzztime; logs in $log_dir)"
printf '%s\n' "package|target|time|execs|result" "${rows[@]}" | column -t -s '|'
if [ ${#failed[@]} -gt 0 ]; then
	echo
	echo "FAILED (${#failed[@]}):"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
