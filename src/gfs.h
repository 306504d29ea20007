/* tlspatch: libguestfs, loaded only when a disk image is processed.
 *
 * Linking libguestfs pulls in about 60 shared libraries: 30-40 ms and
 * 18 MB before main() on every run, most of an apply on a hive file.
 * So image.c calls libguestfs through pointers that tp_gfs_load() fills
 * with dlopen/dlsym the first time an image needs them. The names stay
 * the documented ones: each is remapped to its pointer below. */
#ifndef TLSPATCH_GFS_H
#define TLSPATCH_GFS_H

#include <guestfs.h>

#define TP_GFS_FUNCTIONS(X) \
  X (guestfs_add_domain) X (guestfs_add_drive_opts) X (guestfs_case_sensitive_path) X (guestfs_close) \
  X (guestfs_create) X (guestfs_device_index) X (guestfs_disk_format) \
  X (guestfs_disk_has_backing_file) X (guestfs_download) X (guestfs_exists) \
  X (guestfs_is_dir) X (guestfs_is_file) \
  X (guestfs_last_error) X (guestfs_launch) X (guestfs_list_filesystems) X (guestfs_ln) \
  X (guestfs_mount_options) X (guestfs_mount_ro) X (guestfs_ntfs_3g_probe) X (guestfs_part_to_dev) \
  X (guestfs_list_devices) X (guestfs_list_partitions) X (guestfs_mkmountpoint) \
  X (guestfs_filesize) X (guestfs_pread) X (guestfs_pread_device) X (guestfs_pwrite) X (guestfs_truncate_size) \
  X (guestfs_rename) X (guestfs_rm) X (guestfs_rm_f) X (guestfs_set_backend_settings) \
  X (guestfs_set_error_handler) X (guestfs_set_pgroup) X (guestfs_set_trace) X (guestfs_shutdown) X (guestfs_sync) \
  X (guestfs_touch) X (guestfs_umount_all) X (guestfs_upload) X (guestfs_vfs_type) \
  X (guestfs_version) X (guestfs_free_version)

#define TP_GFS_DECLARE(name) extern __typeof__ (&name) tp_gfs_##name;
TP_GFS_FUNCTIONS (TP_GFS_DECLARE)
#undef TP_GFS_DECLARE

/* 0 when every function is there; -1 with a one-line reason. Thread-safe. */
int tp_gfs_load (char *why, size_t whylen);

#ifndef TP_GFS_NO_REMAP
#define guestfs_add_domain (*tp_gfs_guestfs_add_domain)
#define guestfs_add_drive_opts (*tp_gfs_guestfs_add_drive_opts)
#define guestfs_case_sensitive_path (*tp_gfs_guestfs_case_sensitive_path)
#define guestfs_close (*tp_gfs_guestfs_close)
#define guestfs_create (*tp_gfs_guestfs_create)
#define guestfs_device_index (*tp_gfs_guestfs_device_index)
#define guestfs_disk_format (*tp_gfs_guestfs_disk_format)
#define guestfs_disk_has_backing_file (*tp_gfs_guestfs_disk_has_backing_file)
#define guestfs_download (*tp_gfs_guestfs_download)
#define guestfs_exists (*tp_gfs_guestfs_exists)
#define guestfs_is_dir (*tp_gfs_guestfs_is_dir)
#define guestfs_is_file (*tp_gfs_guestfs_is_file)
#define guestfs_last_error (*tp_gfs_guestfs_last_error)
#define guestfs_launch (*tp_gfs_guestfs_launch)
#define guestfs_list_filesystems (*tp_gfs_guestfs_list_filesystems)
#define guestfs_ln (*tp_gfs_guestfs_ln)
#define guestfs_mount_options (*tp_gfs_guestfs_mount_options)
#define guestfs_mount_ro (*tp_gfs_guestfs_mount_ro)
#define guestfs_ntfs_3g_probe (*tp_gfs_guestfs_ntfs_3g_probe)
#define guestfs_part_to_dev (*tp_gfs_guestfs_part_to_dev)
#define guestfs_list_devices (*tp_gfs_guestfs_list_devices)
#define guestfs_list_partitions (*tp_gfs_guestfs_list_partitions)
#define guestfs_mkmountpoint (*tp_gfs_guestfs_mkmountpoint)
#define guestfs_filesize (*tp_gfs_guestfs_filesize)
#define guestfs_pread (*tp_gfs_guestfs_pread)
#define guestfs_pread_device (*tp_gfs_guestfs_pread_device)
#define guestfs_pwrite (*tp_gfs_guestfs_pwrite)
#define guestfs_version(g) (*tp_gfs_guestfs_version) (g)   /* not the struct of the same name */
#define guestfs_free_version(v) (*tp_gfs_guestfs_free_version) (v)
#define guestfs_truncate_size (*tp_gfs_guestfs_truncate_size)
#define guestfs_rename (*tp_gfs_guestfs_rename)
#define guestfs_rm (*tp_gfs_guestfs_rm)
#define guestfs_rm_f (*tp_gfs_guestfs_rm_f)
#define guestfs_set_backend_settings (*tp_gfs_guestfs_set_backend_settings)
#define guestfs_set_error_handler (*tp_gfs_guestfs_set_error_handler)
#define guestfs_set_pgroup (*tp_gfs_guestfs_set_pgroup)
#define guestfs_set_trace (*tp_gfs_guestfs_set_trace)
#define guestfs_shutdown (*tp_gfs_guestfs_shutdown)
#define guestfs_sync (*tp_gfs_guestfs_sync)
#define guestfs_touch (*tp_gfs_guestfs_touch)
#define guestfs_umount_all (*tp_gfs_guestfs_umount_all)
#define guestfs_upload (*tp_gfs_guestfs_upload)
#define guestfs_vfs_type (*tp_gfs_guestfs_vfs_type)
#endif

#endif
