# `cpack -G DEB` in a build directory makes reflinkfs_VERSION_ARCH.deb,
# installable with `apt install ./reflinkfs_*.deb` on Debian 12: programs
# under /usr (mkfs.reflinkfs and fsck.reflinkfs in /usr/sbin, reflinkfs
# and reflinkctl in /usr/bin), man pages, /usr/share/doc/reflinkfs.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME reflinkfs)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "reflinkfs developers <reflinkfs@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "copy-on-write filesystem with reflinks, in user space (FUSE)")
# CPack puts the summary first and indents these lines.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "reflinkfs keeps a journaled, checksummed filesystem in an image file or a
block device and mounts it through FUSE. cp makes instant clones that
share blocks until one copy is changed.

This package holds the daemon (mount -t fuse.reflinkfs), mkfs.reflinkfs,
fsck.reflinkfs and reflinkctl (clone, dedupe, show sharing).")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # reflinkfs_0.1.0_amd64.deb
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_SECTION otherosfs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# fuse3: mount.fuse3 and fusermount3, which mount -t fuse.reflinkfs and
# unmounting by a user need; the libraries are what the programs link.
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "fuse3, libfuse3-3 (>= 3.14), libuuid1, zlib1g, libc6 (>= 2.34)")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
