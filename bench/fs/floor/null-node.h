// The nodes both floor tools serve (lowlevel-null.c, jsloop-null.c): the root directory and
// read-only 4 KiB files of zeros, as bench/fs/nullfs.ts serves a time path.
#pragma once
#include <string.h>
#include <sys/stat.h>
#include <fuse_lowlevel.h>

#define ROOT_INO 1
#define FILE_BYTES 4096

static inline void fill_null_node(fuse_ino_t ino, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = ino;
  if (ino == ROOT_INO) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
  } else {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = FILE_BYTES;
  }
}
