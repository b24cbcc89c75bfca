/* dirsplit — who may cache a directory's names on the owner: the owner's
 * own FUSE mount (its kernel) or the clients, never both at once
 * (docs/dipolefs.md, "Names on the owner's mount").
 *
 * Why: revoking a cached name takes the kernel's lock of its directory,
 * and a kernel holds that lock while its own change in the directory is
 * at the owner. If the owner's kernel and a client both cached names of
 * one directory, a change on each at once could wait on the other's lock
 * (the owner's change for the client's ack, the client's change for the
 * owner's revocation). With the names of a directory on one side only,
 * the owner's changes there revoke no client names, and a client's
 * request that makes the clients a directory's cachers first revokes the
 * owner's names there (dirsplit_settle), waiting for the owner's kernel,
 * which waits on nobody: no cycle.
 *
 * The owner's mount asks dirsplit_owner_may_cache before each entry
 * reply (positive or absent); a yes records the name, which stays
 * recorded until revoked or dropped by the owner's own change, so the
 * records are a superset of what the owner's kernel caches (revoking a
 * name it does not hold is a no-op). The server counts each client's
 * marked names per directory (dirsplit_client_mark/unmark; a client
 * that tracks by directory once its name set overflowed counts as
 * marking every directory: dirsplit_client_every).
 *
 * Ordering: a name is recorded before the count is read, and the count
 * is raised before the names are taken for revocation, both under one
 * mutex; so a reply that found no marks recorded its name before a
 * settle took the names, and a reply that found marks caches nothing.
 * A client's mark counts until the client acked its revocation, not
 * until it was sent: until then the client's kernel may still hold the
 * name, and may hold the directory's lock for a request of its own that
 * a settle would make wait for the owner's kernel.
 *
 * Locking: one mutex inside, never held across the revoke callback; the
 * callback runs on the thread of dirsplit_settle/dirsplit_revoke_name,
 * which must hold nothing a FUSE request of the owner's mount may wait
 * for (a server worker, before its request runs). Every other call is
 * short and never blocks on the kernel. Any thread.
 */
#ifndef DIPOLE_DIRSPLIT_H
#define DIPOLE_DIRSPLIT_H

#include <stddef.h>
#include <stdint.h>

struct dirsplit;

/* Revoke (parent, name) on the owner's mount: fuse_lowlevel_notify_inval_entry,
 * synchronous (takes the kernel's lock of parent). */
typedef void (*dirsplit_revoke_fn)(void *arg, uint64_t parent, const char *name);

/* At most DIRSPLIT_NAMES names are recorded; beyond, the owner's mount
 * caches no new name until records go (about 80 bytes each). */
#define DIRSPLIT_NAMES 131072u

/* 0, or -ENOMEM. */
int dirsplit_open(struct dirsplit **out, dirsplit_revoke_fn revoke, void *arg);
/* Frees the records; no call may be in flight. NULL: no-op. */
void dirsplit_close(struct dirsplit *d);

/* The owner's mount: may its kernel cache (parent, name), as found or
 * found absent? 1: yes, recorded; 0: no (a client caches names under
 * parent, one caches by directory, a revocation there is running, the
 * records are full or out of memory): reply with entry timeout 0. */
int dirsplit_owner_may_cache(struct dirsplit *d, uint64_t parent, const char *name);
/* The owner's mount renamed a name to (parent, name): its kernel moved the
 * dentry with its timeout, whoever caches names there; recorded. 1: the
 * clients hold that directory (a stray): the caller revokes it with
 * dirsplit_revoke_name once it replied to the rename (its kernel holds the
 * directory until then); settles do not wait for strays. */
int dirsplit_owner_moved(struct dirsplit *d, uint64_t parent, const char *name);
/* The owner's own unlink, rmdir or rename took (parent, name) away: its
 * kernel expired that entry itself, the record goes. */
void dirsplit_owner_dropped(struct dirsplit *d, uint64_t parent, const char *name);

/* A client's name under parent became marked as cached by it / stopped
 * being (revoked, or the client is gone). Never blocks. */
void dirsplit_client_mark(struct dirsplit *d, uint64_t parent);
void dirsplit_client_unmark(struct dirsplit *d, uint64_t parent);
/* +1: a client now counts as caching names under every directory it
 * looked up (its name set overflowed); -1: that client is gone. */
void dirsplit_client_every(struct dirsplit *d, int delta);

/* Before a client request naming something under parent runs, and
 * before its names are marked: returns once the owner's kernel caches no
 * recorded name under parent (under no directory while a client counts
 * as caching everywhere), revoking them or waiting for the thread
 * revoking them, with parent held as if a client marked a name there,
 * so the owner records none meanwhile; the caller marks its names, then
 * calls dirsplit_settled(parent). */
void dirsplit_settle(struct dirsplit *d, uint64_t parent);
void dirsplit_settled(struct dirsplit *d, uint64_t parent);
/* (parent, name) is to go from the owner's kernel: a client changed it
 * (local.c's revocation hook, before the change returns), or it is a
 * stray whose rename was answered. If recorded, revoke it now. */
void dirsplit_revoke_name(struct dirsplit *d, uint64_t parent, const char *name);

/* The mount stopped being the owner's (a handover): from now on every
 * name may be cached and nothing is recorded; the records go. */
void dirsplit_disable(struct dirsplit *d);

/* Names recorded now (status, tests). */
size_t dirsplit_names(struct dirsplit *d);

#endif
