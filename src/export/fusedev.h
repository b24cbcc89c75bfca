/* fusedev — exposes the engine as one regular file in a FUSE mount, so the
 * kernel loop driver (or any program) can use it as a file.
 *
 * The mount lives at `mountpoint`, the file is `mountpoint/NAME`. Requests are
 * served by libfuse's multi-threaded loop on its own threads; they call the
 * engine directly. Files are opened in direct-I/O mode so the kernel keeps no
 * second page cache of the device.
 */
#ifndef DIPOLE_FUSEDEV_H
#define DIPOLE_FUSEDEV_H

#include "engine.h"

struct fusedev;

/* Mount and start serving. err[256] on failure. Also forks a watchdog
 * process that aborts the mount's FUSE connection if this process's
 * calling thread dies without fusedev_stop (a SIGKILL): call it from the
 * main thread. */
int fusedev_start(struct fusedev **out, struct engine *e, const char *mountpoint, const char *name, char *err);
/* Stop the watchdog, unmount (lazily if busy) and join the service threads. */
void fusedev_stop(struct fusedev *f);
/* The engine's size changed: drop the kernel's cached attributes of the
 * file (cached for an hour otherwise), so stat and the loop device see it. */
void fusedev_resized(struct fusedev *f);
/* The loop device over the file (dev "/dev/loopN", "" none): if this
 * process dies, its watchdog clears the device's read-only mark (BLKROSET)
 * so the next user of /dev/loopN can write to it. */
void fusedev_set_loop(struct fusedev *f, const char *dev);
/* Path of the exported file. */
const char *fusedev_file(const struct fusedev *f);

/* If `mountpoint` is a mount (e.g. left by a killed daemon), detach it.
 * Returns 1 if something was cleaned, 0 if nothing was mounted, <0 on error. */
int fusedev_clean_stale(const char *mountpoint);

#endif
