#!/usr/bin/env bash
# docs/cli.md is the CLI reference generated from the commands (`nnterp docs --markdown`); this
# check (ctest: lint.cli_reference) fails when a command, flag or help text changed without it,
# and checks that the generated bash completion completes commands and flags.
#   tools/check_cli_docs.sh NNTERP_BINARY
set -uo pipefail
cd "$(dirname "$0")/.."
nnterp=${1:?usage: tools/check_cli_docs.sh path/to/nnterp}
if ! "$nnterp" docs --markdown | diff -u docs/cli.md - > /tmp/cli_md_diff.$$ 2>&1; then
  head -40 /tmp/cli_md_diff.$$
  rm -f /tmp/cli_md_diff.$$
  echo "cli reference: docs/cli.md is stale; regenerate it: $nnterp docs --markdown > docs/cli.md"
  exit 1
fi
rm -f /tmp/cli_md_diff.$$
complete_words() {  # complete_words WORD... : what completing the last word offers
  bash -c 'source <("$0" docs --bash-completion); COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _nnterp; echo "${COMPREPLY[*]}"' \
    "$nnterp" nnterp "$@"
}
[ "$(complete_words logit-le)" = "logit-lens" ] || { echo "bash completion: 'nnterp logit-le' did not complete to logit-lens"; exit 1; }
[[ " $(complete_words logit-lens --lay) " == *" --layers "* ]] || { echo "bash completion: 'logit-lens --lay' did not offer --layers"; exit 1; }
[ "$(complete_words steer co)" = "compute" ] || { echo "bash completion: 'nnterp steer co' did not complete to compute"; exit 1; }
echo "cli reference: ok (docs/cli.md matches the commands; bash completion completes commands and flags)"
