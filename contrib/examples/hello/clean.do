# clean.do: removes the build products and their redo state.
# .redo/ itself is kept: it may hold a `top` marker, and redo is writing the
# state of `clean` into it while this runs.
rm -f hello all version.h ./*.o ./*.d
rm -f .redo/hello.* .redo/all.* .redo/version.h.* .redo/*.o.*
