#!/bin/bash
# Build the synthetic Windows disk images the image tests share, ONCE per
# test run (one appliance launch for all of them), into DIR:
#   win.img       raw, one NTFS partition with Windows (Server 2019 hives),
#                 System32 with 600 more entries (a directory index of blocks)
#   win.qcow2     the same as qcow2
#   two.img       raw, two NTFS partitions, each a Windows installation
#   nowin.img     raw, NTFS without Windows
#   hiber.img     raw, Windows with hiberfil.sys (hibernated / Fast Startup)
#   dirty.img     raw, Windows whose SOFTWARE hive is dirty, no usable log
#   recov.img     raw, Windows whose SOFTWARE hive is dirty with a valid .LOG1
#   w2k8.qcow2    qcow2, Windows Server 2008 R2 (SCHANNEL half hardened by hand)
# Writes DIR/status: "ok", or "unavailable: reason" (the tests then skip);
# TLSPATCH_SKIP_IMAGES=1 builds none (debian/rules: no appliance in a build chroot).
set -u
dir=$1
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
mkdir -p "$dir"
cd "$dir" || exit 1
[ "$(cat status 2>/dev/null)" = ok ] && exit 0

unavailable () { echo "unavailable: $*" >status; echo "mkimages: $*" >&2; exit 0; }
[ -z "${TLSPATCH_SKIP_IMAGES:-}" ] || unavailable "TLSPATCH_SKIP_IMAGES is set (a package build)"
command -v guestfish >/dev/null || unavailable "guestfish not installed"
command -v qemu-img >/dev/null || unavailable "qemu-img not installed"
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}

mk () { "$top_builddir/tests/mkhive" "$@" || exit 1; }
mk "$top_srcdir/fixtures/software-server2019.reg" SOFTWARE
mk "$top_srcdir/fixtures/system.reg" SYSTEM
mk "$top_srcdir/fixtures/software-32bit.reg" SOFTWARE.32
mk --seq 5,4 "$top_srcdir/fixtures/software-server2019.reg" SOFTWARE.dirty
mk "$top_srcdir/fixtures/software-2008r2.reg" SOFTWARE.08
mk "$top_srcdir/fixtures/system-2008r2.reg" SYSTEM.08
# A dirty SOFTWARE whose .LOG1 holds a newer state (a value only there).
cp SOFTWARE SOFTWARE.new
printf '%s\n' 'Windows Registry Editor Version 5.00' '' '[\Microsoft\Windows Azure Backup\Config]' \
  '"FromLog"=dword:0000002a' >fromlog.reg
hivexregedit --merge SOFTWARE.new fromlog.reg || exit 1
"$top_builddir/tests/mklog" SOFTWARE SOFTWARE.new SOFTWARE.recov SOFTWARE.recov.LOG1 2>/dev/null || exit 1
# Windows leaves room past the last bin (hive files grow in 256 KiB
# steps): so do the clean hives of the images, but for SOFTWARE.32 (in
# two.img), which ends at its last bin: a new bin must grow the file.
truncate -s 256K SOFTWARE SYSTEM SOFTWARE.08 SYSTEM.08 || exit 1
"$top_builddir/tests/mkpe" cmd.exe || exit 1
printf 'HIBR' >hiberfil.sys; head -c 4092 /dev/zero >>hiberfil.sys
rm -rf sys32 && mkdir sys32 || exit 1
for i in $(seq 1 600); do printf 'MZ%s\n' "$i" >"sys32/Module$i.dll"; done
tar -C sys32 -cf sys32.tar . || exit 1

install_windows () {   # DEVICE SOFTWARE-FILE [SYSTEM-FILE]
  cat <<EOS
mkfs ntfs $1 label:Windows
mount $1 /
mkdir-p /Windows/System32/config
upload $2 /Windows/System32/config/SOFTWARE
upload ${3:-SYSTEM} /Windows/System32/config/SYSTEM
upload cmd.exe /Windows/System32/cmd.exe
EOS
}
single_partition () {  # DEVICE
  printf 'part-disk %s mbr\npart-set-mbr-id %s 1 0x07\n' "$1" "$1"
}

rm -f ./*.img ./*.qcow2
{
  for img in win two nowin hiber dirty recov w2k8; do
    echo "disk-create $img.img raw 64M"
    echo "add-drive $img.img format:raw"
  done
  echo run
  single_partition /dev/sda; install_windows /dev/sda1 SOFTWARE
  echo "tar-in sys32.tar /Windows/System32"; echo umount-all
  echo "part-init /dev/sdb mbr"
  echo "part-add /dev/sdb p 2048 65535"
  echo "part-add /dev/sdb p 65536 -2048"
  echo "part-set-mbr-id /dev/sdb 1 0x07"
  echo "part-set-mbr-id /dev/sdb 2 0x07"
  install_windows /dev/sdb1 SOFTWARE; echo umount-all
  install_windows /dev/sdb2 SOFTWARE.32; echo umount-all
  single_partition /dev/sdc; echo "mkfs ntfs /dev/sdc1"; echo "mount /dev/sdc1 /"
  echo "mkdir-p /Data"; echo "upload SYSTEM /Data/notes.bin"; echo umount-all
  single_partition /dev/sdd; install_windows /dev/sdd1 SOFTWARE
  echo "upload hiberfil.sys /hiberfil.sys"; echo umount-all
  single_partition /dev/sde; install_windows /dev/sde1 SOFTWARE.dirty
  echo "upload SOFTWARE /Windows/System32/config/SOFTWARE.LOG1"; echo umount-all
  single_partition /dev/sdf; install_windows /dev/sdf1 SOFTWARE.recov
  echo "upload SOFTWARE.recov.LOG1 /Windows/System32/config/SOFTWARE.LOG1"; echo umount-all
  single_partition /dev/sdg; install_windows /dev/sdg1 SOFTWARE.08 SYSTEM.08; echo umount-all
} >build.fish
guestfish <build.fish >build.log 2>&1 || unavailable "guestfish could not build the images (see $dir/build.log)"
qemu-img convert -f raw -O qcow2 win.img win.qcow2 || unavailable "qemu-img convert failed"
qemu-img convert -f raw -O qcow2 w2k8.img w2k8.qcow2 && rm -f w2k8.img || unavailable "qemu-img convert failed"
echo ok >status
