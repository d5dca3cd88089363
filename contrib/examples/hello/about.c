/* about.c: the only file that includes the generated version.h. */
#include "about.h"
#include "version.h"

const char *about_version(void)
{
	return HELLO_VERSION;
}
