#!/bin/bash
# Disk images through libguestfs: the synthetic Windows images are built
# once per test run (tests/mkimages.sh, via `make check`) and copied here.
# Results are read back with virt-win-reg and guestfish + regfexport.
. "$top_srcdir/tests/lib.sh"

IMAGES=$top_builddir/tests/images
status=$(cat "$IMAGES/status" 2>/dev/null || echo "not built")
if [ "$status" != ok ]; then echo "1..0 # SKIP test images: $status"; exit 0; fi
need virt-win-reg guestfish qemu-img
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}

copy () { cp --sparse=always "$IMAGES/$1" "$2"; }
# snapshot IMAGE FORMAT DIR: one guestfish launch downloads both hives
# and lists the config folder; libregf then reads them (regf_value).
snapshot () {
  rm -rf "$3"; mkdir -p "$3"
  guestfish --ro --format="$2" -a "$1" -i <<EOS >/dev/null
download /Windows/System32/config/SOFTWARE $3/SOFTWARE
download /Windows/System32/config/SYSTEM $3/SYSTEM
ls /Windows/System32/config | cat > $3/ls
EOS
}

# --- one raw image: check, apply, idempotence, revert -----------------------
copy win.img win.img; cp --sparse=always win.img win.orig
run_tp check --json -x win.img
ok "check: the volume is only ever mounted read-only" \
  eval 'grep -q "trace: mount_ro" err && ! grep -q "trace: mount_options\|trace: mount \"" err'
ok "check on an image: exit 3, one object for its Windows root" \
  eval '[ $rc -eq 3 ] && [ "$(json_get ".root + \" \" + .status")" = "/dev/sda1 noncompliant" ]'
ok "check: the image stays byte-identical" same_bytes win.orig win.img

run_tp apply --json --undo undo.reg win.img
ok "apply on an image: exit 0, patched, 7 changes" \
  eval '[ $rc -eq 0 ] && [ "$(json_get ".status + \" \" + (.changes|length|tostring)")" = "patched 7" ]'
virt-win-reg --format=raw win.img 'HKLM\SOFTWARE\Microsoft\.NETFramework' >vwr.reg 2>&1
ok "virt-win-reg: SchUseStrongCrypto = 1 under all three 64-bit version keys" \
  test "$(grep -c '^"SchUseStrongCrypto"=dword:00000001' vwr.reg)" -eq 3
ok "virt-win-reg: policy and v2.0 SP1 untouched" \
  eval '! awk "/^\\[/ { k = \$0 } /SchUseStrongCrypto/ { print k }" vwr.reg | grep -q "policy\|SP1"'
snapshot win.img raw snap
ok "regfexport: 32-bit v4.0.30319 (was REG_SZ) is DWORD 1" \
  test "$(regf_value snap/SOFTWARE '\Wow6432Node\Microsoft\.NETFramework\v4.0.30319' SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1"
ok "regfexport: obengine Start = 2 in Current (ControlSet001) and Default (ControlSet002)" \
  eval '[ "$(regf_value snap/SYSTEM "\ControlSet001\Services\obengine" Start)" = "REG_DWORD_LITTLE_ENDIAN 2" ] &&
        [ "$(regf_value snap/SYSTEM "\ControlSet002\Services\obengine" Start)" = "REG_DWORD_LITTLE_ENDIAN 2" ]'
ok "regfexport: LastKnownGood ControlSet003 untouched" \
  test "$(regf_value snap/SYSTEM '\ControlSet003\Services\obengine' Start)" = "REG_DWORD_LITTLE_ENDIAN 3"
ok "no temporary files left in the guest's config folder" eval '! grep -q tlspatch snap/ls'
cp "$IMAGES/SOFTWARE" host.SOFTWARE; cp "$IMAGES/SYSTEM" host.SYSTEM
"$TLSPATCH" apply -q host.SOFTWARE host.SYSTEM
ok "written in place in the image, both hives read as tlspatch writes them on the host (regfexport)" \
  eval 'diff <(regf_dump host.SOFTWARE) <(regf_dump snap/SOFTWARE) && diff <(regf_dump host.SYSTEM) <(regf_dump snap/SYSTEM)'

cp --sparse=always win.img win.patched
run_tp apply --json win.img
ok "second apply: unchanged, the image byte-identical" \
  eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = unchanged ] && same_bytes win.patched win.img'

run_tp revert --json --undo undo.reg win.img
ok "revert on the image: exit 0, reverted" eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = reverted ]'
snapshot win.img raw after
snapshot win.orig raw before
ok "after revert: both hives read exactly as before (regfexport)" \
  eval 'diff <(regf_dump before/SOFTWARE) <(regf_dump after/SOFTWARE) && diff <(regf_dump before/SYSTEM) <(regf_dump after/SYSTEM)'

# --backup takes the whole-file path: the original stays beside the hive.
copy win.img bk.img
run_tp apply --json --backup bk.img
snapshot bk.img raw bk
ok "--backup on an image: patched, SOFTWARE.tlspatch-bak and SYSTEM.tlspatch-bak in the guest" \
  eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = patched ] &&
        [ "$(json_get .backup)" = /Windows/System32/config/SOFTWARE.tlspatch-bak ] &&
        grep -qx SOFTWARE.tlspatch-bak bk/ls && grep -qx SYSTEM.tlspatch-bak bk/ls'
ok "--backup on an image: the hives read as the in-place write made them (regfexport)" \
  eval 'diff <(regf_dump snap/SOFTWARE) <(regf_dump bk/SOFTWARE) && diff <(regf_dump snap/SYSTEM) <(regf_dump bk/SYSTEM)'

# --- many images in one shared appliance: formats, two Windows, refusals ------
copy win.qcow2 win.qcow2
qemu-img create -q -f qcow2 -b "$WORK/win.qcow2" -F qcow2 overlay.qcow2
for i in two hiber nowin dirty recov; do copy $i.img $i.img; cp --sparse=always $i.img $i.orig; done
run_tp apply --json --share-appliance 8 win.qcow2 overlay.qcow2 two.img hiber.img nowin.img dirty.img recov.img
ok "shared appliance run: exit 1 (some images refused)" expect_rc 1
by_image () { json_get "select(.image == \"$1\") | $2"; }
ok "qcow2 (format detected): patched" test "$(by_image win.qcow2 .status)" = patched
ok "image with a backing file, no --format: refused" \
  eval '[ "$(by_image overlay.qcow2 .status)" = error ] && by_image overlay.qcow2 .error | grep -q "backing file"'
ok "two Windows installations: two objects, both patched" \
  test "$(by_image two.img '.root + " " + .status' | tr '\n' ,)" = "/dev/sda1 patched,/dev/sda2 patched,"
ok "the second installation is the 32-bit Windows 7" \
  test "$(by_image two.img 'select(.root == "/dev/sda2") | .product')" = "Windows 7 Enterprise"
ok "hibernated: refused, and the message says what to do" \
  eval 'by_image hiber.img .error | grep -q "hibernated or was shut down with Fast Startup.*restart"'
ok "hibernated: image byte-identical" same_bytes hiber.orig hiber.img
ok "no Windows: clear error" test "$(by_image nowin.img .error)" = "no Windows installation found in this image"
ok "no Windows: image byte-identical" same_bytes nowin.orig nowin.img
ok "dirty hive in an image: refused" eval 'by_image dirty.img .error | grep -q "dirty"'
ok "dirty hive: image byte-identical" same_bytes dirty.orig dirty.img
ok "dirty hive with a valid log: recovered and patched in one write" \
  eval '[ "$(by_image recov.img ".status + \" \" + (.recovery.entries|tostring) + \" \" + .recovery.logs[0]")" = "patched 1 /Windows/System32/config/SOFTWARE.LOG1" ]'
snapshot recov.img raw rv
ok "recovered image: the value only in the log survived, and the fix is there (regfexport)" \
  eval '[ "$(regf_value rv/SOFTWARE "\Microsoft\Windows Azure Backup\Config" FromLog)" = "REG_DWORD_LITTLE_ENDIAN 42" ] &&
        [ "$(regf_value rv/SOFTWARE "\Microsoft\.NETFramework\V4.0.30319" SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1" ]'
run_tp check --json --format qcow2 --format auto -a overlay.qcow2
ok "--format auto: the -a images after it are detected again (the backing file refused)" \
  eval '[ $rc -eq 1 ] && json_get .error | grep -q "backing file"'
snapshot win.qcow2 qcow2 q
ok "qcow2 read back with guestfish + regfexport" \
  test "$(regf_value q/SOFTWARE '\Microsoft\.NETFramework\v3.0' SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1"

# --- one read-write mount per volume -----------------------------------------
# apply mounts each volume once, read-write with noatime and norecover (a
# no-op apply stays byte-identical, above). The second root of two.img has
# no room past its last bin: its hive grows in place.
copy two.img grow.img
LIBGUESTFS_TRACE=1 "$TLSPATCH" apply -q grow.img 2>&1 | grep 'trace: [a-z_]* ' | grep -v ' = ' >grow.trace
ok "apply: each volume mounted once, read-write with noatime and norecover" \
  eval '[ "$(grep -c "trace: mount_options \"noatime,norecover\"" grow.trace)" -eq 2 ] && ! grep -q "trace: mount_ro\|trace: mount \"" grow.trace'
ok "a hive with no room past its last bin: grown in place (a bin at its old end), not uploaded" \
  eval 'grep -q "trace: pwrite \"/fs1/Windows/System32/config/SOFTWARE\" \"hbin.* 8192\$" grow.trace && ! grep -q "trace: upload" grow.trace'
run_tp check --json grow.img
ok "... and both roots of that image are compliant afterwards" \
  test "$(json_get .status | tr '\n' ,)" = "compliant,compliant,"

# --- vmdk, vhdx and vpc (VHD), format detected, one shared check ------------
for f in vmdk vhdx vpc; do qemu-img convert -f raw -O $f "$IMAGES/win.img" win.$f; done
printf '# Disk DescriptorFile\nversion=1\nRW 131072 FLAT "/etc/hostname" 0\n' >evil.vmdk
run_tp check --json --junit formats.xml --share-appliance 4 win.vmdk win.vhdx win.vpc evil.vmdk
ok "vmdk, vhdx, vpc: detected and inspected (noncompliant)" \
  test "$(json_get 'select(.image != "evil.vmdk") | .image + " " + .status' | sort | tr '\n' ,)" = "win.vhdx noncompliant,win.vmdk noncompliant,win.vpc noncompliant,"
ok "a VMDK descriptor (it could name any host file) is refused without --format" \
  eval 'json_get "select(.image == \"evil.vmdk\") | .error" | grep -q "VMDK descriptor"'
XMLLINT=${XMLLINT:-$(command -v xmllint || true)}
if [ -n "$XMLLINT" ]; then
  ok "--junit: one test case per Windows installation, a failure each, the refused image an error" \
    eval '"$XMLLINT" --noout --schema "$top_srcdir/tests/junit.xsd" formats.xml &&
          [ "$("$XMLLINT" --xpath "string(/testsuites/@tests)" formats.xml)" = 4 ] &&
          [ "$("$XMLLINT" --xpath "count(//testcase[starts-with(@name, \"win.vhdx /dev/\")]/failure)" formats.xml)" = 1 ] &&
          "$XMLLINT" --xpath "string(//testcase[@name=\"evil.vmdk\"]/error/@message)" formats.xml | grep -q "VMDK descriptor"'
else
  skip "xmllint is not installed"
fi

# --- -j 2 and an image given with -a -----------------------------------------
copy win.img a.img; copy win.img b.img
run_tp check --json -j 2 -a a.img b.img
ok "-j 2 check on two images: exit 3, two results" \
  eval '[ $rc -eq 3 ] && [ "$(json_get .status | tr "\n" ,)" = "noncompliant,noncompliant," ]'

# --- nbd:// against qemu-nbd on 127.0.0.1, and a locked image ----------------
if command -v qemu-nbd >/dev/null; then
  copy win.img nbd.img
  port=$(( 20000 + RANDOM % 20000 ))
  qemu-nbd -f raw -b 127.0.0.1 -p $port -x win -t nbd.img & nbd_pid=$!
  sleep 1
  run_tp apply --json nbd://127.0.0.1:$port/win
  ok "nbd://: apply through qemu-nbd: patched" eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = patched ]'
  run_tp apply --json nbd.img
  ok "image held by a running qemu: refused as in use" \
    eval '[ $rc -eq 1 ] && json_get .error | grep -q "in use"'
  kill $nbd_pid; wait $nbd_pid 2>/dev/null
  snapshot nbd.img raw n
  ok "nbd: the write reached the image (guestfish + regfexport)" \
    test "$(regf_value n/SOFTWARE '\Microsoft\.NETFramework\v2.0.50727' SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1"
else
  for i in 1 2 3; do skip "qemu-nbd not installed"; done
fi

# --- settings on a qcow2 image: keys created in place, audited, reverted ------
copy win.qcow2 set.qcow2
snapshot set.qcow2 qcow2 setbefore
S=$FIXTURES/settings
run_tp check --settings "$S/hardening.reg" set.qcow2
ok "settings on qcow2: check before exit 3" expect_rc 3
LIBGUESTFS_TRACE=1 run_tp apply --json --undo setundo.reg --settings "$S/hardening.reg" set.qcow2
ok "settings on qcow2: apply exit 0, patched" \
  eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = patched ]'
ok "settings on qcow2: written in place (no upload of a whole hive)" \
  eval 'grep -q "trace: pwrite" err && ! grep -q "trace: upload" err'
snapshot set.qcow2 qcow2 setafter
ok "settings on qcow2: TLS 1.0 Server Enabled 0 in ControlSet001 (regfexport)" \
  test "$(regf_value setafter/SYSTEM '\ControlSet001\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.0\Server' Enabled)" = "REG_DWORD_LITTLE_ENDIAN 0"
ok "settings on qcow2: the created five levels read back (regfexport)" \
  test "$(regf_value setafter/SOFTWARE '\Contoso\Agent\Config\Tls\Pins' Limit)" != ""
run_tp check --settings "$S/hardening.reg" set.qcow2
ok "settings on qcow2: check after apply exit 0" expect_rc 0
run_tp revert --undo setundo.reg set.qcow2
snapshot set.qcow2 qcow2 setreverted
ok "settings on qcow2: revert exact (regfexport dumps of both hives)" \
  eval 'diff <(regf_dump setbefore/SOFTWARE) <(regf_dump setreverted/SOFTWARE) && diff <(regf_dump setbefore/SYSTEM) <(regf_dump setreverted/SYSTEM)'

# --- --profile pci on a qcow2 image of Server 2008 R2 ---------------------------
copy w2k8.qcow2 pci.qcow2
snapshot pci.qcow2 qcow2 pcibefore
P='\ControlSet001\Control\SecurityProviders\SCHANNEL\Protocols'
run_tp check --json --profile pci pci.qcow2
ok "pci on qcow2 (2008 R2): check before exit 3, build 7601, KB3140245 named" \
  eval '[ $rc -eq 3 ] && [ "$(json_get .windows_build)" = 7601 ] && json_get ".warnings[]" | grep -q "KB3140245 is not installed"'
run_tp apply --json --undo pciundo.reg --profile pci pci.qcow2
ok "pci on qcow2: apply exit 0, patched" eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = patched ]'
snapshot pci.qcow2 qcow2 pciafter
ok "pci on qcow2: TLS 1.0 Server 0xffffffff -> 0, TLS 1.2 Client REG_SZ -> DWORD 1 (regfexport)" \
  eval '[ "$(regf_value pciafter/SYSTEM "$P\\TLS 1.0\\Server" Enabled)" = "REG_DWORD_LITTLE_ENDIAN 0" ] &&
        [ "$(regf_value pciafter/SYSTEM "$P\\TLS 1.2\\Client" Enabled)" = "REG_DWORD_LITTLE_ENDIAN 1" ]'
ok "pci on qcow2: WinHttp DefaultSecureProtocols 0x800, both branches (regfexport)" \
  eval '[ "$(regf_value pciafter/SOFTWARE "\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\WinHttp" DefaultSecureProtocols)" = "REG_DWORD_LITTLE_ENDIAN 2048" ] &&
        [ "$(regf_value pciafter/SOFTWARE "\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\WinHttp" DefaultSecureProtocols)" = "REG_DWORD_LITTLE_ENDIAN 2048" ]'
run_tp check --profile pci pci.qcow2
ok "pci on qcow2: check after apply exit 0" expect_rc 0
cp --sparse=always pci.qcow2 pci.patched
run_tp apply --json --profile pci pci.qcow2
ok "pci on qcow2: second apply unchanged, the image byte-identical" \
  eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = unchanged ] && same_bytes pci.patched pci.qcow2'
run_tp revert --undo pciundo.reg pci.qcow2
snapshot pci.qcow2 qcow2 pcireverted
ok "pci on qcow2: revert exact (regfexport dumps of both hives)" \
  eval '[ $rc -eq 0 ] && diff <(regf_dump pcibefore/SOFTWARE) <(regf_dump pcireverted/SOFTWARE) && diff <(regf_dump pcibefore/SYSTEM) <(regf_dump pcireverted/SYSTEM)'

# --- libvirt domains (-d, -c): libvirt's test driver reads them from a file ------
# Two disks each: the first without Windows, so Windows is on the second (sdb).
copy nowin.img d1.img; copy win.img d2.img
cp --sparse=always d1.img d1.orig; cp --sparse=always d2.img d2.orig
domain () {   # domain NAME RUNSTATE: a test-driver domain over d1.img and d2.img
  cat <<EOX
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>$1</name><memory>1048576</memory><os><type>hvm</type></os>
    <devices>
      <disk type='file' device='disk'><driver name='qemu' type='raw'/>
        <source file='$WORK/d1.img'/><target dev='vda' bus='virtio'/></disk>
      <disk type='file' device='disk'><driver name='qemu' type='raw'/>
        <source file='$WORK/d2.img'/><target dev='vdb' bus='virtio'/></disk>
    </devices>
    <test:runstate>$2</test:runstate>
  </domain>
EOX
}
{ echo "<node>"; domain running 1; domain off 5; echo "</node>"; } >libvirt.xml
LV=test://$WORK/libvirt.xml
run_tp check --json -c "$LV" -d running
ok "-d: check reads a running domain (read-only): Windows on its second disk" \
  eval '[ $rc -eq 3 ] && [ "$(json_get ".image + \" \" + .root + \" \" + .status")" = "running /dev/sdb1 noncompliant" ]'
run_tp apply -c "$LV" -d running
ok "-d: apply refuses a running domain in one line, its disks untouched" \
  eval 'expect_rc 1 && one_line_error running "domain is running" && same_bytes d1.orig d1.img && same_bytes d2.orig d2.img'
copy win.img sh.img
run_tp apply --json --share-appliance 2 sh.img -c "$LV" -d running
ok "-d: a running domain sharing an appliance with an image fails alone; the image is patched" \
  eval '[ $rc -eq 1 ] && [ "$(json_get "select(.image == \"sh.img\") | .status")" = patched ] &&
        json_get "select(.image == \"running\") | .error" | grep -q "domain is running" &&
        same_bytes d1.orig d1.img && same_bytes d2.orig d2.img && ! grep -q "retrying" "$WORK/err"'
run_tp apply --json --undo dom.reg -c "$LV" -d off
ok "-d: apply on a shut-off domain: patched" eval '[ $rc -eq 0 ] && [ "$(json_get .status)" = patched ]'
snapshot d2.img raw dom
ok "-d: the write reached the domain's second disk (guestfish + regfexport)" \
  eval 'test "$(regf_value dom/SOFTWARE "\Microsoft\.NETFramework\v2.0.50727" SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1" &&
        same_bytes d1.orig d1.img'
run_tp check -c "$LV" -d missing
ok "-d: a domain libvirt does not know: one line" eval 'expect_rc 1 && one_line_error missing "domain not found"'

# --- a block device: a broken VM's disk attached to a rescue VM -----------------
# A loop device stands in for it (root and a kernel with loop devices only).
copy win.img blk.img
dev=
[ "$(id -u)" -eq 0 ] && command -v losetup >/dev/null && dev=$(losetup -f --show blk.img 2>/dev/null)
if [ -n "$dev" ]; then
  if command -v python3 >/dev/null; then
    cp --sparse=always blk.img blk.before
    # A program holding the device exclusively, as a mount or device-mapper does.
    python3 -c 'import os, sys, time; os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL); print("held", flush=True); time.sleep(120)' "$dev" >held &
    holder=$!
    for i in $(seq 50); do [ -s held ] && break; sleep 0.1; done
    run_tp apply -a "$dev"
    kill $holder; wait $holder 2>/dev/null
    ok "block device in use (held exclusively): apply refused in one line, the device untouched" \
      eval 'expect_rc 1 && one_line_error "$dev" "device is in use" && same_bytes blk.before blk.img'
  else
    skip "python3 is not installed"
  fi
  run_tp apply --json --undo blk.reg "$dev"
  ok "block device as TARGET: apply patched it, the result names the device" \
    eval '[ $rc -eq 0 ] && [ "$(json_get ".status + \" \" + .image")" = "patched $dev" ]'
  losetup -d "$dev"
  snapshot blk.img raw blk
  ok "block device: the write reached the disk (guestfish + regfexport)" \
    test "$(regf_value blk/SOFTWARE '\Microsoft\.NETFramework\v2.0.50727' SchUseStrongCrypto)" = "REG_DWORD_LITTLE_ENDIAN 1"
else
  for i in 1 2 3; do skip "no loop device here (needs root and the loop module)"; done
fi

ok "every JSON object printed follows the one schema (tests/schema.jq)" schema_ok
done_testing
