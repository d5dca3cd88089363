/* greet.c: prints the greeting followed by the program's version. */
#include <stdio.h>

#include "about.h"
#include "greet.h"

void greet(const char *who)
{
	printf("%s, %s! This is hello %s.\n", GREETING, who, about_version());
}
