# version.h.do: generates version.h from the first line of VERSION.
redo-ifchange VERSION
version=$(sed -n 1p VERSION)
[ -n "$version" ] || { echo "$0: VERSION is empty" >&2; exit 1; }
cat >"$3" <<EOT
/* Generated from VERSION by version.h.do: do not edit. */
#ifndef VERSION_H
#define VERSION_H
#define HELLO_VERSION "$version"
#endif
EOT
