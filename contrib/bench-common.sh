# Helpers shared by contrib/bench-*-compare.sh (sourced, not run).

# Where a checkout keeps its config and rules: defaults/ (or, in older
# ones, config/ and rules/ at the top).
config_of() {
    if [ -d "$1/defaults/config" ]; then echo "$1/defaults"; else echo "$1"; fi
}

# The median of the numbers on standard input, one per line.
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
