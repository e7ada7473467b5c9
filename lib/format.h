/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format.h - every on-disk structure of reflinkfs, defined once.
 *
 * This header is the twin of docs/FORMAT.md: a change here changes the
 * doc, mkfs, fsck and the tests in the same commit.
 *
 * Rules:
 *  1. Every multi-byte field is little-endian; the structs below use the
 *     rfs_leNN_t typedefs so that no field is read without a conversion.
 *  2. Every size and every offset is pinned by a _Static_assert.
 *  3. Every metadata block starts with struct rfs_blkhdr and carries a
 *     zlib crc32 seeded with crc32(0, fs uuid); see lib/crc.h.
 *  4. Nothing here is trusted after a read until a verifier (lib/buf.c,
 *     lib/super.c, lib/btree.c) has checked it.
 */
#ifndef RFS_FORMAT_H
#define RFS_FORMAT_H

#include <stddef.h>
#include <stdint.h>

typedef uint16_t rfs_le16_t;
typedef uint32_t rfs_le32_t;
typedef uint64_t rfs_le64_t;

/* Units: a physical block number is never a file offset. */
typedef uint64_t fsblock_t; /* physical block number on the device */
typedef uint64_t fileoff_t; /* file offset in blocks */
typedef uint64_t extlen_t;  /* extent length in blocks */
typedef uint64_t rfs_ino_t; /* inode number */
typedef uint64_t rfs_tid_t; /* transaction id */

#define RFS_FORMAT_VERSION 1

#define RFS_MIN_BLOCK_LOG     10 /* 1 KiB */
#define RFS_MAX_BLOCK_LOG     16 /* 64 KiB */
#define RFS_DEFAULT_BLOCK_LOG 12 /* 4 KiB */

/* ------------------------------------------------------------------ */
/* Block header: the first 40 bytes of every metadata block.           */
/* ------------------------------------------------------------------ */

#define RFS_BLK_MAGIC 0x42534652u /* "RFSB" as bytes on disk */

enum rfs_blk_type {
	RFS_BLK_SUPER = 1,	/* superblock (primary and backups) */
	RFS_BLK_BTREE = 2,	/* node of any B+tree */
	RFS_BLK_FREELIST = 3,	/* reserve list of blocks for free-space tree nodes */
	RFS_BLK_JOURNAL_SB = 4, /* journal superblock */
	RFS_BLK_JDESC = 5,	/* log: descriptor (magic RFS_JRNL_MAGIC) */
	RFS_BLK_JCOMMIT = 6,	/* log: commit block (magic RFS_JRNL_MAGIC) */
	RFS_BLK_JREVOKE = 7,	/* log: revoke block (magic RFS_JRNL_MAGIC) */
	RFS_BLK_TYPE_MAX
};

struct rfs_blkhdr {
	rfs_le32_t magic; /* RFS_BLK_MAGIC */
	rfs_le32_t crc;	  /* crc32 of the whole block with this field as zero */
	rfs_le16_t type;  /* enum rfs_blk_type */
	rfs_le16_t flags; /* 0; reserved */
	rfs_le32_t pad;	  /* 0; reserved */
	rfs_le64_t blkno; /* the block's own number: catches misdirected writes */
	rfs_le64_t owner; /* tree type, inode number, or 0 */
	rfs_le64_t tid;	  /* transaction that last wrote the block */
};
_Static_assert(sizeof(struct rfs_blkhdr) == 40, "blkhdr size");
_Static_assert(offsetof(struct rfs_blkhdr, crc) == 4, "blkhdr crc");
_Static_assert(offsetof(struct rfs_blkhdr, type) == 8, "blkhdr type");
_Static_assert(offsetof(struct rfs_blkhdr, blkno) == 16, "blkhdr blkno");
_Static_assert(offsetof(struct rfs_blkhdr, owner) == 24, "blkhdr owner");
_Static_assert(offsetof(struct rfs_blkhdr, tid) == 32, "blkhdr tid");

#define RFS_BLKHDR_CRC_OFF offsetof(struct rfs_blkhdr, crc)

/* ------------------------------------------------------------------ */
/* Superblock: block 0, with backups at block_count/2 and block_count-1 */
/* ------------------------------------------------------------------ */

#define RFS_SB_MAGIC 0x53464b4e494c4652ull /* "RFLINKFS" as bytes on disk */

/* Tree types: the index of a tree's root in rfs_super.roots[] and the
 * tree_type of each of its nodes. */
enum rfs_tree_type {
	RFS_TREE_NONE = 0,
	RFS_TREE_BNO = 1,   /* free extents by start block */
	RFS_TREE_CNT = 2,   /* free extents by (length, start) */
	RFS_TREE_INODE = 3, /* inode records by inode number */
	RFS_TREE_DIR = 4,   /* directory entries by (dir, name hash, seq) */
	RFS_TREE_BMAP = 5,  /* file extents by (inode, fork, file offset) */
	RFS_TREE_XATTR = 6, /* extended attributes by (inode, name hash, seq, chunk) */
	RFS_TREE_REFC = 7,  /* shared extents and CoW staging by (domain, start) */
	RFS_TREE_MAX = 8
};

struct rfs_root {
	rfs_le64_t blkno;  /* root node, 0 for an empty tree */
	rfs_le32_t height; /* levels, 0 for an empty tree, 1 for a lone leaf */
	rfs_le32_t pad;
};
_Static_assert(sizeof(struct rfs_root) == 16, "root size");

enum rfs_sb_state {
	RFS_STATE_CLEAN = 1u << 0, /* unmounted cleanly: log empty */
	RFS_STATE_ERROR = 1u << 1, /* an error was recorded: run fsck */
};

/* Feature masks. An image with an unknown incompat bit is refused; with
 * an unknown ro_compat bit it may only be opened read-only. */
/* The refcount tree (slot 7) is kept: files may share blocks. A reader
 * that does not know it may read, but a writer would free shared blocks. */
#define RFS_FEAT_RO_COMPAT_REFLINK (1ull << 0)

/* Regular files may keep their data fork in the inode record
 * (RFS_INLINE_EXTENTS): a reader that does not know it would see files
 * without blocks. */
#define RFS_FEAT_INCOMPAT_INLINE_FORK (1ull << 0)

#define RFS_FEAT_COMPAT_SUPP	0ull
#define RFS_FEAT_RO_COMPAT_SUPP RFS_FEAT_RO_COMPAT_REFLINK
#define RFS_FEAT_INCOMPAT_SUPP	RFS_FEAT_INCOMPAT_INLINE_FORK

#define RFS_LABEL_MAX  64
#define RFS_NR_BACKUPS 2

struct rfs_super {
	struct rfs_blkhdr hdr;		     /*   0 */
	rfs_le64_t magic;		     /*  40 RFS_SB_MAGIC */
	rfs_le32_t version;		     /*  48 RFS_FORMAT_VERSION */
	rfs_le32_t block_log;		     /*  52 log2(block size) */
	rfs_le64_t block_count;		     /*  56 blocks in the filesystem */
	uint8_t uuid[16];		     /*  64 */
	char label[RFS_LABEL_MAX];	     /*  80 NUL-padded */
	rfs_le64_t feat_compat;		     /* 144 */
	rfs_le64_t feat_ro_compat;	     /* 152 */
	rfs_le64_t feat_incompat;	     /* 160 */
	rfs_le32_t state;		     /* 168 enum rfs_sb_state bits */
	rfs_le32_t mount_count;		     /* 172 */
	rfs_le64_t journal_start;	     /* 176 first block of the log region */
	rfs_le64_t journal_blocks;	     /* 184 length of the log region */
	rfs_le64_t backup[RFS_NR_BACKUPS];   /* 192 backup superblock locations */
	rfs_le64_t freelist_blkno;	     /* 208 the RFS_BLK_FREELIST block */
	struct rfs_root roots[RFS_TREE_MAX]; /* 216 indexed by enum rfs_tree_type */
	rfs_le64_t free_blocks;		     /* 344 blocks in the free-space trees */
	rfs_le64_t inode_count;		     /* 352 live inodes */
	rfs_le64_t next_ino;		     /* 360 next inode number to hand out */
	rfs_le64_t next_generation;	     /* 368 next inode generation */
	rfs_le64_t root_ino;		     /* 376 */
	rfs_le64_t lost_found_ino;	     /* 384 */
	rfs_le64_t last_tid;		     /* 392 last committed transaction */
	rfs_le64_t mkfs_time;		     /* 400 seconds since the epoch */
	rfs_le64_t mount_time;		     /* 408 */
	rfs_le64_t write_time;		     /* 416 */
	rfs_le64_t hash_seed;		     /* 424 directory name hash seed */
	rfs_le32_t err_count;		     /* 432 errors recorded since mkfs or fsck */
	rfs_le32_t err_first_code;	     /* 436 errno of the first error */
	rfs_le64_t err_first_time;	     /* 440 */
	rfs_le64_t err_last_time;	     /* 448 */
	rfs_le32_t err_last_code;	     /* 456 */
	rfs_le32_t pad0;		     /* 460 */
	uint8_t reserved[96];		     /* 464 zero */
};					     /* 560 */
_Static_assert(sizeof(struct rfs_super) == 560, "super size");
_Static_assert(offsetof(struct rfs_super, magic) == 40, "super magic");
_Static_assert(offsetof(struct rfs_super, block_count) == 56, "super block_count");
_Static_assert(offsetof(struct rfs_super, uuid) == 64, "super uuid");
_Static_assert(offsetof(struct rfs_super, label) == 80, "super label");
_Static_assert(offsetof(struct rfs_super, feat_compat) == 144, "super compat");
_Static_assert(offsetof(struct rfs_super, state) == 168, "super state");
_Static_assert(offsetof(struct rfs_super, journal_start) == 176, "super journal");
_Static_assert(offsetof(struct rfs_super, backup) == 192, "super backup");
_Static_assert(offsetof(struct rfs_super, freelist_blkno) == 208, "super freelist");
_Static_assert(offsetof(struct rfs_super, roots) == 216, "super roots");
_Static_assert(offsetof(struct rfs_super, free_blocks) == 344, "super free_blocks");
_Static_assert(offsetof(struct rfs_super, root_ino) == 376, "super root_ino");
_Static_assert(offsetof(struct rfs_super, last_tid) == 392, "super last_tid");
_Static_assert(offsetof(struct rfs_super, hash_seed) == 424, "super hash_seed");
_Static_assert(offsetof(struct rfs_super, err_count) == 432, "super err_count");
_Static_assert(offsetof(struct rfs_super, reserved) == 464, "super reserved");

/* ------------------------------------------------------------------ */
/* B+tree node: any tree, any level.                                   */
/* ------------------------------------------------------------------ */

/*
 * A node is a slotted page:
 *
 *   | blkhdr | nodehdr | slot 0 | slot 1 | ... |   free   | rec k | ... rec 0 |
 *   0        40        56                       ^heap_top               blocksize
 *
 * Slots are kept sorted by key; records are packed from the end of the
 * block downwards in any order. A record begins with the tree's fixed-size
 * key. In a leaf the rest of the record is the tree's value; in an internal
 * node it is an le64 child block number, and the key is a lower bound of
 * every key in that child's subtree (and greater than every key of the
 * previous child's subtree).
 *
 * Records sit at any byte offset, so code copies them into aligned
 * in-memory structs (memcpy) before reading fields.
 */
struct rfs_btree_node {
	struct rfs_blkhdr hdr; /*  0 owner = tree type (or inode for per-inode trees) */
	rfs_le16_t level;      /* 40 0 for a leaf */
	rfs_le16_t nrecs;      /* 42 */
	rfs_le16_t tree_type;  /* 44 enum rfs_tree_type */
	rfs_le16_t pad;	       /* 46 */
	rfs_le32_t heap_top;   /* 48 lowest byte used by record bytes */
	rfs_le32_t pad2;       /* 52 */
};
_Static_assert(sizeof(struct rfs_btree_node) == 56, "btree node header size");
_Static_assert(offsetof(struct rfs_btree_node, level) == 40, "node level");
_Static_assert(offsetof(struct rfs_btree_node, heap_top) == 48, "node heap_top");

struct rfs_btree_slot {
	rfs_le16_t off; /* byte offset of the record in the block */
	rfs_le16_t len; /* record length in bytes, key included */
};
_Static_assert(sizeof(struct rfs_btree_slot) == 4, "slot size");

#define RFS_BTREE_MAX_HEIGHT 16

/* Free-space trees ------------------------------------------------- */

struct rfs_bno_rec { /* RFS_TREE_BNO: key = start */
	rfs_le64_t start;
	rfs_le64_t len;
};
_Static_assert(sizeof(struct rfs_bno_rec) == 16, "bno rec");

struct rfs_cnt_rec { /* RFS_TREE_CNT: key = (len, start), no value */
	rfs_le64_t len;
	rfs_le64_t start;
};
_Static_assert(sizeof(struct rfs_cnt_rec) == 16, "cnt rec");

/* Free list: blocks set aside for free-space tree nodes (XFS's AGFL) so
 * that a split of the bno/cnt trees never has to allocate from them. */
struct rfs_freelist {
	struct rfs_blkhdr hdr; /*  0 owner = 0 */
	rfs_le32_t count;      /* 40 entries in use, from blocks[0] */
	rfs_le32_t pad;	       /* 44 */
	rfs_le64_t blocks[];   /* 48 */
};
_Static_assert(sizeof(struct rfs_freelist) == 48, "freelist header");

/* Inodes ------------------------------------------------------------ */

#define RFS_ROOT_INO	   1 /* equals FUSE_ROOT_ID: no translation at the edge */
#define RFS_LOST_FOUND_INO 2
#define RFS_FIRST_FREE_INO 3

enum rfs_inode_flags {
	RFS_IFLAG_REFLINK = 1u << 0, /* may have shared blocks */
};

/* Inline area kinds (rfs_dinode.inline_type). */
enum rfs_inline_type {
	RFS_INLINE_NONE = 0,
	RFS_INLINE_SYMLINK = 1, /* inline_data holds the symlink target */
	RFS_INLINE_EXTENTS = 2, /* regular files: the data fork, rfs_inline_ext[] */
};

/* One extent of a data fork kept in the inode (RFS_INLINE_EXTENTS):
 * inline_data holds inline_len / 24 of them, sorted by offset, not
 * overlapping, under the rules of struct rfs_bmap_rec. Their mapping tid
 * is the inode's. */
struct rfs_inline_ext {
	rfs_le64_t off;	  /*  0 file offset (blocks), < 2^56 */
	rfs_le64_t pblk;  /*  8 first physical block, != 0 */
	rfs_le32_t len;	  /* 16 blocks, >= 1 */
	rfs_le32_t flags; /* 20 enum rfs_bmap_flags */
};
_Static_assert(sizeof(struct rfs_inline_ext) == 24, "inline extent size");

#define RFS_INLINE_EXTS 5 /* at most, in the 128 bytes of inline data */

struct rfs_timestamp {
	rfs_le64_t sec; /* signed seconds since the epoch */
	rfs_le32_t nsec;
	rfs_le32_t pad;
};
_Static_assert(sizeof(struct rfs_timestamp) == 16, "timestamp");

struct rfs_dinode {		    /* RFS_TREE_INODE record: key = ino */
	rfs_le64_t ino;		    /*   0 key */
	rfs_le32_t mode;	    /*   8 S_IFMT | permission bits */
	rfs_le32_t uid;		    /*  12 */
	rfs_le32_t gid;		    /*  16 */
	rfs_le32_t nlink;	    /*  20 */
	rfs_le64_t size;	    /*  24 bytes */
	rfs_le64_t nblocks;	    /*  32 blocks mapped by the forks */
	struct rfs_timestamp atime; /* 40 */
	struct rfs_timestamp mtime; /* 56 */
	struct rfs_timestamp ctime; /* 72 */
	struct rfs_timestamp btime; /* 88 creation */
	rfs_le64_t flags;	    /* 104 enum rfs_inode_flags */
	rfs_le64_t generation;	    /* 112 */
	rfs_le64_t tid;		    /* 120 transaction that last changed it */
	rfs_le64_t parent;	    /* 128 directories: the parent directory */
	rfs_le64_t rdev;	    /* 136 device nodes */
	rfs_le16_t inline_type;	    /* 144 enum rfs_inline_type */
	rfs_le16_t inline_len;	    /* 146 bytes of inline data after the record */
	rfs_le32_t pad;		    /* 148 */
	uint8_t inline_data[];	    /* 152 */
};
_Static_assert(sizeof(struct rfs_dinode) == 152, "dinode size");
_Static_assert(offsetof(struct rfs_dinode, atime) == 40, "dinode atime");
_Static_assert(offsetof(struct rfs_dinode, flags) == 104, "dinode flags");
_Static_assert(offsetof(struct rfs_dinode, inline_type) == 144, "dinode inline");

/* Directory entries ------------------------------------------------- */

#define RFS_NAME_MAX 255

/* cookie = (48-bit name hash << 15) | 15-bit collision sequence. It is the
 * readdir offset: stable while other entries come and go. Cookies 0..2
 * are never used (0 = start, 1 = ".", 2 = ".."). */
#define RFS_DIR_HASH_BITS 48
#define RFS_DIR_SEQ_BITS  15

struct rfs_dirent_key {
	rfs_le64_t dir;	   /* directory inode */
	rfs_le64_t cookie; /* hash << 15 | seq */
};
_Static_assert(sizeof(struct rfs_dirent_key) == 16, "dirent key");

struct rfs_dirent {		   /* RFS_TREE_DIR record */
	struct rfs_dirent_key key; /*  0 */
	rfs_le64_t ino;		   /* 16 */
	uint8_t ftype;		   /* 24 DT_* value */
	uint8_t namelen;	   /* 25 1..255 */
	uint8_t name[];		   /* 26 not NUL-terminated */
} __attribute__((packed));
_Static_assert(sizeof(struct rfs_dirent) == 26, "dirent size");

/* File extents (data and CoW forks) ---------------------------------- */

enum rfs_fork {
	RFS_FORK_DATA = 0, /* file offset -> physical extent */
	RFS_FORK_COW = 1,  /* staging extents for writes into shared blocks */
};

#define RFS_BMAP_OFF_BITS 56 /* file offsets below 2^56 blocks */

enum rfs_bmap_flags {
	RFS_BMAP_UNWRITTEN = 1u << 0, /* allocated, reads as zeros (preallocated) */
};

/* RFS_TREE_BMAP record. key = (ino, fork << 56 | file offset in blocks).
 * One global tree: a small file's extents cost 40 bytes in a shared leaf. */
struct rfs_bmap_rec {
	rfs_le64_t ino;	  /*  0 key */
	rfs_le64_t fkey;  /*  8 key: fork << 56 | file offset (blocks) */
	rfs_le64_t pblk;  /* 16 first physical block */
	rfs_le32_t len;	  /* 24 blocks, >= 1 */
	rfs_le32_t flags; /* 28 enum rfs_bmap_flags */
	rfs_le64_t tid;	  /* 32 transaction that last changed the mapping */
};
_Static_assert(sizeof(struct rfs_bmap_rec) == 40, "bmap rec size");

/* Reference counts (reflink) --------------------------------------- */

/* The two key spaces of the refcount tree. The domain is an explicit key
 * field that every lookup checks, not a flag bit in the block number (a
 * corrupted flag bit made XFS lookups cross domains). */
enum rfs_refc_domain {
	RFS_REFC_SHARED = 0, /* blocks mapped by 2 or more data-fork extents */
	RFS_REFC_COW = 1,    /* CoW staging: allocated, in a CoW fork, not yet remapped */
};

#define RFS_REFC_MAX 0xffffffffu /* a shared record's count never exceeds it */

/*
 * RFS_TREE_REFC record: key = (domain, start). Records of one domain never
 * overlap. A block in no record and not free has one owner (implied).
 * Shared records hold refcount >= 2 and owner 0; neighbours with equal
 * counts are merged. CoW staging records hold refcount 1 and the inode
 * whose CoW fork maps them; they are freed at mount (a crash left them).
 */
struct rfs_refc_rec {
	rfs_le64_t domain;   /*  0 key: enum rfs_refc_domain */
	rfs_le64_t start;    /*  8 key: first physical block */
	rfs_le32_t len;	     /* 16 blocks, >= 1 */
	rfs_le32_t refcount; /* 20 SHARED: mappings (>= 2); COW: 1 */
	rfs_le64_t owner;    /* 24 COW: inode; SHARED: 0 */
};
_Static_assert(sizeof(struct rfs_refc_rec) == 32, "refcount rec size");

/* Extended attributes ------------------------------------------------ */

/*
 * RFS_TREE_XATTR record: key = (ino, cookie, chunk). cookie is
 * (48-bit name hash << 15) | collision sequence, as for directory entries.
 * A value is split into chunks so that every record fits the tree's
 * record limit: chunk 0 holds the name and the first value bytes, chunks
 * 1.. hold the rest, in order.
 */
#define RFS_XATTR_NAME_MAX 255
#define RFS_XATTR_SIZE_MAX 65536
#define RFS_XATTR_REC_MAX  318 /* record limit: three to a 1 KiB node */

struct rfs_xattr_rec {
	rfs_le64_t ino;	      /*  0 key */
	rfs_le64_t cookie;    /*  8 key */
	rfs_le32_t chunk;     /* 16 key */
	rfs_le32_t value_len; /* 20 whole value length (in every chunk) */
	uint8_t namelen;      /* 24 chunk 0: name length, 1..255; others 0 */
	uint8_t pad[7];	      /* 25 */
	uint8_t data[];	      /* 32 chunk 0: name then value bytes; others: value bytes */
};
_Static_assert(sizeof(struct rfs_xattr_rec) == 32, "xattr rec header");

/* Journal ----------------------------------------------------------- */

/*
 * The log region [sb.journal_start, +journal_blocks) holds the journal
 * superblock at relative block 0 and a ring of transactions in relative
 * blocks [first, blocks). A transaction is, in ring order:
 *
 *   descriptor, its tagged blocks..., [descriptor, blocks...]..., revoke...,
 *   commit
 *
 * Log control blocks (descriptor, revoke, commit) carry the usual block
 * header but with magic RFS_JRNL_MAGIC, so that they can never be taken for
 * a metadata block; hdr.blkno is their own absolute block number and
 * hdr.tid their transaction. A logged block whose first four bytes equal
 * RFS_JRNL_MAGIC is stored with them zeroed and RFS_JTAG_ESCAPE set.
 */
#define RFS_JRNL_MAGIC 0x4a534652u /* "RFSJ" as bytes on disk */

struct rfs_journal_sb {
	struct rfs_blkhdr hdr; /*  0 magic RFS_BLK_MAGIC, type RFS_BLK_JOURNAL_SB */
	rfs_le32_t blocks;     /* 40 length of the log region, this block included */
	rfs_le32_t first;      /* 44 first ring block, relative to the region */
	rfs_le64_t sequence;   /* 48 tid of the transaction at start (or the next one) */
	rfs_le32_t start;      /* 56 relative block of the oldest live transaction, 0 = empty */
	rfs_le32_t errno_;     /* 60 */
	rfs_le64_t features;   /* 64 */
	uint8_t uuid[16];      /* 72 equals the filesystem uuid */
};
_Static_assert(sizeof(struct rfs_journal_sb) == 88, "journal sb size");

enum rfs_jtag_flags {
	RFS_JTAG_ESCAPE = 1u << 0, /* first 4 bytes were RFS_JRNL_MAGIC: restore them */
};

struct rfs_jtag {
	rfs_le64_t blkno; /* home block number */
	rfs_le32_t flags; /* enum rfs_jtag_flags */
	rfs_le32_t crc;	  /* crc32 (seeded) of the block as stored in the log */
};
_Static_assert(sizeof(struct rfs_jtag) == 16, "jtag size");

struct rfs_jdesc {
	struct rfs_blkhdr hdr;	/*  0 type RFS_BLK_JDESC */
	rfs_le32_t ntags;	/* 40 blocks that follow this descriptor */
	rfs_le32_t pad;		/* 44 */
	struct rfs_jtag tags[]; /* 48 */
};
_Static_assert(sizeof(struct rfs_jdesc) == 48, "jdesc header size");

struct rfs_jrevoke {
	struct rfs_blkhdr hdr; /*  0 type RFS_BLK_JREVOKE */
	rfs_le32_t count;      /* 40 entries */
	rfs_le32_t pad;	       /* 44 */
	rfs_le64_t blocks[];   /* 48 revoked home block numbers */
};
_Static_assert(sizeof(struct rfs_jrevoke) == 48, "jrevoke header size");

struct rfs_jcommit {
	struct rfs_blkhdr hdr; /*  0 type RFS_BLK_JCOMMIT */
	rfs_le32_t nblocks;    /* 40 log blocks of the transaction before this one */
	rfs_le32_t txn_crc;    /* 44 crc32 (seeded) over the le32 crcs of those blocks */
	rfs_le64_t sec;	       /* 48 commit time */
	rfs_le32_t nsec;       /* 56 */
	rfs_le32_t flags;      /* 60 0 */
};
_Static_assert(sizeof(struct rfs_jcommit) == 64, "jcommit size");

#endif /* RFS_FORMAT_H */
