/* version: Plaza's version string, reported by `plaza version`, in the
 * connect reply and in /metrics. */
#ifndef PLAZA_VERSION_H
#define PLAZA_VERSION_H

#define PLAZA_VERSION "0.1.0"

#endif
