# Sourced by the fsck command-line tests: a scratch directory removed on
# exit, pass/fail counters, and checks of a command's exit code and output.
# Every check counts one pass or one failure; a failure prints its output.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# expect CODE WHAT CMD...: CMD exits CODE (its output goes to $tmp/out)
expect() {
	local want=$1 what=$2; shift 2
	"$@" >"$tmp/out" 2>&1
	local got=$?
	if [ "$got" -eq "$want" ]; then ok; else bad "$what: exit $got, expected $want"; cat "$tmp/out"; fi
}
# expect_out REGEX WHAT / expect_no REGEX WHAT: the last output has / lacks it
expect_out() {
	if grep -qE -- "$1" "$tmp/out"; then ok; else bad "$2: output lacks /$1/"; cat "$tmp/out"; fi
}
expect_no() {
	if grep -qE -- "$1" "$tmp/out"; then bad "$2: output has /$1/"; cat "$tmp/out"; else ok; fi
}
# only_codes CODES WHAT: every [CODE] printed is one of CODES (a regex)
only_codes() {
	if grep -oE '\[[A-Z_]+\]' "$tmp/out" | grep -vqE "^\[($1)\]$"; then
		bad "$2: unexpected problems"; cat "$tmp/out"
	else ok; fi
}
