# hello.do: links the objects into the program.
objs="main.o greet.o about.o"
redo-ifchange $objs
${CC:-cc} $LDFLAGS -o "$3" $objs $LIBS
