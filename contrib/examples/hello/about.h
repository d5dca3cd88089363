/* about.h: information about the program. */
#ifndef ABOUT_H
#define ABOUT_H

const char *about_version(void);

#endif
