# default.o.do: compiles $2.c into $3 (the object $1), then records every header
# the compiler read as a dependency, so that editing a header rebuilds exactly
# the objects that include it.

# Generated headers must exist before the compiler runs: -MD only lists files it
# found. Build the ones this source includes (directly) first.
generated="version.h"
for h in $generated; do
	if grep -q "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"$h\"" "$2.c"; then
		redo-ifchange "$h"
	fi
done

redo-ifchange "$2.c"

# The make-style dependency list goes to a temporary file next to $3.
trap 'rm -f "$3.d"' EXIT
${CC:-cc} ${CFLAGS:--O2 -Wall} -MD -MF "$3.d" -c -o "$3" "$2.c"

# "$3: main.c greet.h \<newline> /usr/include/stdio.h ...": join the continued
# lines (backslash and newline become spaces), drop the "target:" part, and
# hand every remaining word to redo-ifchange. System headers are listed too
# (-MD, not -MMD): they are sources, so an upgraded libc rebuilds as well.
set -f
deps=$(tr '\\\n' '  ' <"$3.d" | sed -e 's/^[^:]*://')
redo-ifchange $deps
