# Sourced by the dev/bench-*.sh scripts. write_bench_section NAME SECTION
# OUT replaces the part of OUT between the markers "<!-- bench:NAME begin"
# and "<!-- bench:NAME end -->" with the file SECTION (which carries the
# markers itself), or appends SECTION when OUT has no such part yet.
write_bench_section() {
	local name=$1 section=$2 out=$3 tmp
	if [ -f "$out" ] && grep -q "<!-- bench:$name begin" "$out"; then
		tmp=$(mktemp)
		awk -v section="$section" -v begin="<!-- bench:$name begin" -v end="<!-- bench:$name end" '
			index($0, begin) == 1 { while ((getline line < section) > 0) print line; skip = 1; next }
			index($0, end) == 1 { skip = 0; next }
			!skip { print }
		' "$out" >"$tmp"
		cp "$tmp" "$out"
		rm -f "$tmp"
		return
	fi
	if [ -f "$out" ]; then echo >>"$out"; else
		printf '# Benchmarks\n\nFigures measured with `morax bench`; see `morax bench -h` to run your own.\n\n' >"$out"
	fi
	cat "$section" >>"$out"
}
