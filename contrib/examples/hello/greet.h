/* greet.h: the greeting, shared by main.c and greet.c. */
#ifndef GREET_H
#define GREET_H

#define GREETING "Hello"

void greet(const char *who);

#endif
