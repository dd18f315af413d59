/* cmd_store: the operator's commands on the durable store (plaza backup,
 * plaza restore, plaza store check|repair). main.c resolves the store
 * folder (--store, or store.path of the configuration) and calls these
 * with the rest of the arguments. Each returns the process exit code. */
#ifndef PLAZA_CMD_STORE_H
#define PLAZA_CMD_STORE_H

int cmd_backup(int argc, char **argv, const char *store_dir);
int cmd_restore(int argc, char **argv, const char *store_dir);
int cmd_store(int argc, char **argv, const char *store_dir);

/* The usage lines of these commands. */
extern const char CMD_STORE_USAGE[];

#endif
