#!/bin/bash
# tlspatch benchmark (`make bench`): big synthetic hives and Windows images,
# tlspatch against dd (the I/O limit), hivex's own tools and virt-win-reg.
# Writes docs/performance.md; anything below the NOTES marker in that file
# (e.g. a "Where the time goes" section) is kept across runs.
# Environment: BENCH_REPS (hive files, default 5), BENCH_IMG_REPS (one image,
# default 1), BENCH_FLEET_REPS (eight images, default 1), BENCH_SHARE_REPS (2 more
# samples of one-image apply and --share-appliance, alternating), BENCH_IMAGES (8),
# BENCH_CLSIDS (52000: 5 keys each), BENCH_SERVICES (400 per control set),
# BENCH_REPORT_ONLY=1 (report from the last samples), BENCH_QCOW2=1 (also time apply on the qcow2 image), BENCH_VWR_JOBS (2: the
# eight virt-win-reg runs go two at a time, as tlspatch -j 2).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
top_srcdir=$(cd "${top_srcdir:-.}" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd)
REPS=${BENCH_REPS:-5} IMG_REPS=${BENCH_IMG_REPS:-1} FLEET_REPS=${BENCH_FLEET_REPS:-1}
SHARE_REPS=${BENCH_SHARE_REPS:-2}
QCOW2=${BENCH_QCOW2:-0} VWR_JOBS=${BENCH_VWR_JOBS:-2}
NIMG=${BENCH_IMAGES:-8} CLSIDS=${BENCH_CLSIDS:-52000} SERVICES=${BENCH_SERVICES:-400}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
export LC_ALL=C
bench=$top_srcdir/bench cache=$top_srcdir/bench/cache work=$top_srcdir/bench/cache/work
out=$top_srcdir/docs/performance.md
tlspatch=$top_builddir/src/tlspatch mkhive=$top_builddir/tests/mkhive mkpe=$top_builddir/tests/mkpe
TIME=/usr/bin/time
NOTES='<!-- NOTES: everything below this line is kept by bench/run.sh -->'

die () { echo "bench: $*" >&2; exit 1; }
log () { echo "bench: $(date +%T) $*" >&2; }
[ -x "$TIME" ] || die "$TIME missing: apt-get install time"
for c in hivexregedit hivexget guestfish virt-win-reg qemu-img; do
  command -v $c >/dev/null || die "$c not installed (tools/install-deps)"; done
[ -x "$tlspatch" ] && [ -x "$mkhive" ] && [ -x "$mkpe" ] || die "build src/tlspatch tests/mkhive tests/mkpe first"
mkdir -p "$cache" "$work" || exit 1

# ---- inputs, generated once (the stamp holds what they depend on) ----------
stamp="gen=$(md5sum <"$bench/gen-hives.awk" | cut -c1-12) clsids=$CLSIDS services=$SERVICES layout=2"
if [ "$(cat "$cache/hives.stamp" 2>/dev/null)" != "$stamp" ]; then
  log "generating hives ($stamp)"
  rm -f "$cache/images.stamp"
  awk -v which=software -v n="$CLSIDS" -f "$bench/gen-hives.awk" >"$cache/software.reg" &&
  awk -v which=system -v n="$SERVICES" -f "$bench/gen-hives.awk" >"$cache/system.reg" &&
  "$mkhive" "$cache/software.reg" "$cache/SOFTWARE" &&
  "$mkhive" "$cache/system.reg" "$cache/SYSTEM" || die "hive generation failed"
  # Windows grows hive files in 256 KiB steps, so they end with room past
  # the last bin (the shared Windows 7 and 10 hives do): so do these.
  truncate -s %256K "$cache/SOFTWARE" "$cache/SYSTEM" || die "truncate failed"
  echo "$stamp" >"$cache/hives.stamp"
fi
swsize=$(stat -c %s "$cache/SOFTWARE") sysize=$(stat -c %s "$cache/SYSTEM")
swkeys=$(grep -c '^\[' "$cache/software.reg") sykeys=$(grep -c '^\[' "$cache/system.reg")
if [ "$(cat "$cache/images.stamp" 2>/dev/null)" != "$stamp" ]; then
  log "building win.img (512M sparse raw, NTFS) and win.qcow2 (one appliance launch)"
  rm -f "$cache/win.img" "$cache/win.qcow2"
  "$mkpe" "$cache/cmd.exe" || die "mkpe failed"
  # A System32 folder as big as a real one (about 3,000 entries), so that
  # finding the hives walks a directory index of realistic depth.
  rm -rf "$cache/sys32" && mkdir -p "$cache/sys32" || die "mkdir failed"
  for i in $(seq 1 3000); do
    printf 'MZ%s\n' "$i" >"$cache/sys32/module$i.dll"
  done
  tar -C "$cache/sys32" -cf "$cache/sys32.tar" . && rm -rf "$cache/sys32" || die "tar failed"
  guestfish >"$cache/build.log" 2>&1 <<EOS || die "guestfish failed (see $cache/build.log)"
disk-create $cache/win.img raw 512M
add-drive $cache/win.img format:raw
run
part-disk /dev/sda mbr
part-set-mbr-id /dev/sda 1 0x07
mkfs ntfs /dev/sda1 label:Windows
mount /dev/sda1 /
mkdir-p /Windows/System32/config
upload $cache/SOFTWARE /Windows/System32/config/SOFTWARE
upload $cache/SYSTEM /Windows/System32/config/SYSTEM
upload $cache/cmd.exe /Windows/System32/cmd.exe
tar-in $cache/sys32.tar /Windows/System32
umount-all
EOS
  qemu-img convert -f raw -O qcow2 "$cache/win.img" "$cache/win.qcow2" || die "qemu-img convert failed"
  echo "$stamp" >"$cache/images.stamp"
fi

# ---- measuring --------------------------------------------------------------
samples=$work/samples
# BENCH_REPORT_ONLY=1: no measuring, rewrite the report from the last samples
if [ "${BENCH_REPORT_ONLY:-0}" = 1 ]; then REPS=0 IMG_REPS=0 FLEET_REPS=0 SHARE_REPS=0; else : >"$samples"; fi
# t NAME OKRCS CMD...: one timed run; records "NAME seconds maxrss_kB"
t () {
  local name=$1 ok=$2 rc e m; shift 2
  local t0=$EPOCHREALTIME t1
  "$TIME" -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err"; rc=$?
  t1=$EPOCHREALTIME
  case " $ok " in *" $rc "*) ;; *) cat "$work/out" "$work/err" >&2; die "$name: exit $rc: $*";; esac
  read -r e m < <(tail -n1 "$work/time")
  # %e has 10 ms steps; the shell's microsecond clock times fast runs properly.
  e=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
  echo "$name $e $m" >>"$samples"; log "$name ${e}s ${m}kB"
}
fresh () { cp "$cache/SOFTWARE" "$work/SOFTWARE"; cp "$cache/SYSTEM" "$work/SYSTEM"; rm -f "$work/T" "$work/T2"; sync; }
compliant () { "$tlspatch" check -q "$@" >/dev/null 2>&1 || die "not compliant after the run: $*"; }
med () { awk -v n="$1" -v col="${2:-2}" '$1==n{v[++c]=$col} END{if(!c){print "nan";exit}
  for(i=1;i<=c;i++)for(j=i+1;j<=c;j++)if(v[j]<v[i]){x=v[i];v[i]=v[j];v[j]=x}
  print (c%2)?v[(c+1)/2]:(v[c/2]+v[c/2+1])/2}' "$samples"; }
maxrss () { awk -v n="$1" '$1==n&&$3>m{m=$3} END{printf "%.0f", m/1024}' "$samples"; }

# A settings file that creates keys: the five SCHANNEL protocols'
# Client and Server keys in the boot control set (15 in SYSTEM), and ten
# agents' keys (21 in SOFTWARE), each with values.
settings=$work/settings.reg
{ printf 'Windows Registry Editor Version 5.00\n\n'
  for p in 'SSL 2.0' 'SSL 3.0' 'TLS 1.0' 'TLS 1.1' 'TLS 1.2'; do
    for side in Client Server; do
      printf '[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\%s\\%s]\n' "$p" "$side"
      printf '"Enabled"=dword:00000000\n"DisabledByDefault"=dword:00000001\n\n'
    done
  done
  for i in $(seq -w 1 10); do
    printf '[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso\\Agent%s\\Tls]\n"Level"=dword:%08x\n"Name"="agent %s"\n\n' "$i" "${i#0}" "$i"
  done; } >"$settings"

log "hive files: $REPS rep(s)"
for r in $(seq "$REPS"); do
  fresh; t apply_sw 0 "$tlspatch" apply -q "$work/SOFTWARE"
  fresh; t dd_sw 0 dd if="$work/SOFTWARE" of="$work/T" bs=1M conv=fsync
  fresh; t apply_settings_sw 0 "$tlspatch" apply -q --settings "$settings" "$work/SOFTWARE"
  [ "$r" = 1 ] && { "$tlspatch" check -q --settings "$settings" "$work/SOFTWARE" || die "settings not applied"; }
  fresh; t dd_sw2 0 dd if="$work/SOFTWARE" of="$work/T" bs=1M conv=fsync
  fresh; t apply_pci_sw 0 "$tlspatch" apply -q --profile pci "$work/SOFTWARE"
  [ "$r" = 1 ] && { "$tlspatch" check -q --profile pci "$work/SOFTWARE" || die "profile pci not applied"; }
  fresh; t dd_sw3 0 dd if="$work/SOFTWARE" of="$work/T" bs=1M conv=fsync
  fresh; t apply_pair 0 "$tlspatch" apply -q "$work/SOFTWARE" "$work/SYSTEM"
  [ "$r" = 1 ] && compliant "$work/SOFTWARE" "$work/SYSTEM"
  t noop_pair 0 "$tlspatch" apply -q "$work/SOFTWARE" "$work/SYSTEM"
  fresh; t check_pair "0 3" "$tlspatch" check -q "$work/SOFTWARE" "$work/SYSTEM"
  fresh; t hivex_pair 0 bash "$bench/hivex-tools.sh" "$work/SOFTWARE" "$work/SYSTEM"
  [ "$r" = 1 ] && compliant "$work/SOFTWARE" "$work/SYSTEM"
  fresh; t dd_pair 0 sh -c 'dd if="$1" of="$3" bs=1M conv=fsync && dd if="$2" of="$4" bs=1M conv=fsync' sh \
    "$work/SOFTWARE" "$work/SYSTEM" "$work/T" "$work/T2"
done
rm -f "$work/SOFTWARE" "$work/SYSTEM" "$work/T" "$work/T2"

log "one image (raw; qcow2 for apply): $IMG_REPS rep(s)"
one=$work/one.img oneq=$work/one.qcow2
for r in $(seq "$IMG_REPS"); do
  cp --sparse=always "$cache/win.img" "$one"; sync; t img_apply 0 "$tlspatch" apply -q "$one"
  [ "$r" = 1 ] && compliant "$one"
  cp --sparse=always "$cache/win.img" "$one"; sync; t img_apply_settings 0 "$tlspatch" apply -q --settings "$settings" "$one"
  [ "$r" = 1 ] && { "$tlspatch" check -q --settings "$settings" "$one" || die "settings not applied to the image"; }
  cp --sparse=always "$cache/win.img" "$one"; sync; t img_apply_pci 0 "$tlspatch" apply -q --profile pci "$one"
  [ "$r" = 1 ] && { "$tlspatch" check -q --profile pci "$one" || die "profile pci not applied to the image"; }
  cp --sparse=always "$cache/win.img" "$one"; sync; t img_check "0 3" "$tlspatch" check -q "$one"
  cp --sparse=always "$cache/win.img" "$one"; sync; t img_vwr 0 bash "$bench/virt-win-reg.sh" "$one" raw
  [ "$r" = 1 ] && compliant "$one"
  [ "$QCOW2" = 1 ] || continue
  cp "$cache/win.qcow2" "$oneq"; sync; t img_apply_qcow2 0 "$tlspatch" apply -q "$oneq"
done
rm -f "$one" "$oneq"

log "$NIMG images: $FLEET_REPS rep(s)"
imgs=(); for i in $(seq "$NIMG"); do imgs+=("$work/fleet$i.img"); done
fleet () { for f in "${imgs[@]}"; do cp --sparse=always "$cache/win.img" "$f"; done; sync; }
for r in $(seq "$FLEET_REPS"); do
  fleet; t fleet_j2 0 "$tlspatch" apply -q -j 2 "${imgs[@]}"
  fleet; t fleet_share 0 "$tlspatch" apply -q --share-appliance "$NIMG" "${imgs[@]}"
  [ "$r" = 1 ] && compliant "${imgs[@]}"
  fleet; t fleet_vwr 0 sh -c 'j=$1; shift; printf "%s\0" "$@" | xargs -0 -P "$j" -I{} bash "$0" {} raw' "$bench/virt-win-reg.sh" "$VWR_JOBS" "${imgs[@]}"
done
# The --share-appliance target compares two tlspatch runs (~15 s and ~30 s
# under TCG): more samples of just those two, alternating, steady the ratio
# without repeating the 15-minute virt-win-reg fleet.
log "one image and --share-appliance $NIMG again: $SHARE_REPS rep(s)"
for r in $(seq "$SHARE_REPS"); do
  cp --sparse=always "$cache/win.img" "$one"; sync; t img_apply 0 "$tlspatch" apply -q "$one"
  fleet; t fleet_share 0 "$tlspatch" apply -q --share-appliance "$NIMG" "${imgs[@]}"
done
rm -f "${imgs[@]}" "$one"

# ---- report -----------------------------------------------------------------
div () { awk -v a="$1" -v b="$2" 'BEGIN{if(b+0==0){print "nan"}else printf "%.2f", a/b}'; }
yes () { awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN{ok=(op=="le")?(v+0<=l+0):(v+0>=l+0); print (v=="nan")?"?":(ok?"**yes**":"**NO**")}'; }
row () { grep -q "^$3 " "$samples" || return 0; printf '| %s | `%s` | %s | %s | %s |\n' "$1" "$2" "$(med "$3")" "$(maxrss "$3")" "$(awk -v n="$3" '$1==n{c++} END{print c+0}' "$samples")"; }
rows () {
  row "1. hive file" "tlspatch apply SOFTWARE" apply_sw
  row "1. hive file" "dd if=SOFTWARE of=T bs=1M conv=fsync" dd_sw
  row "1. hive file" "tlspatch apply --settings settings.reg SOFTWARE (creates 21 keys)" apply_settings_sw
  row "1. hive file" "dd (again, beside the settings run)" dd_sw2
  row "1. hive file" "tlspatch apply --profile pci SOFTWARE" apply_pci_sw
  row "1. hive file" "dd (again, beside the pci run)" dd_sw3
  row "1. hive pair" "tlspatch apply SOFTWARE SYSTEM" apply_pair
  row "1. hive pair" "bench/hivex-tools.sh SOFTWARE SYSTEM" hivex_pair
  row "1. hive pair" "dd (both files, conv=fsync)" dd_pair
  row "2. hive pair" "tlspatch check SOFTWARE SYSTEM" check_pair
  row "2. hive pair" "tlspatch apply SOFTWARE SYSTEM (already patched)" noop_pair
  row "3. one image" "tlspatch apply win.img" img_apply
  row "3. one image" "tlspatch apply --settings settings.reg win.img (creates 36 keys)" img_apply_settings
  row "3. one image" "tlspatch apply --profile pci win.img (creates 18 keys, 29 values)" img_apply_pci
  row "3. one image" "tlspatch check win.img" img_check
  row "3. one image" "bench/virt-win-reg.sh win.img raw" img_vwr
  row "3. one image" "tlspatch apply win.qcow2" img_apply_qcow2
  row "4. $NIMG images" "tlspatch apply -j 2 IMG x$NIMG" fleet_j2
  row "4. $NIMG images" "tlspatch apply --share-appliance $NIMG IMG x$NIMG" fleet_share
  row "4. $NIMG images" "bench/virt-win-reg.sh IMG raw, x$NIMG, $VWR_JOBS at a time" fleet_vwr
}
for n in apply_sw dd_sw apply_settings_sw dd_sw2 apply_pci_sw dd_sw3 img_apply_pci img_apply_settings apply_pair noop_pair check_pair hivex_pair dd_pair img_apply img_check img_vwr img_apply_qcow2 fleet_j2 fleet_share fleet_vwr; do
  eval "m_$n=\$(med $n)"; done
rss_sw_mb=$(maxrss apply_sw)
rss_limit_mb=$(awk -v s="$swsize" 'BEGIN{printf "%.0f", 1.3*s/1048576+16}')
r_dd=$(div "$m_apply_sw" "$m_dd_sw"); r_set=$(div "$m_apply_settings_sw" "$m_dd_sw2")
r_pci=$(div "$m_apply_pci_sw" "$m_dd_sw3"); r_img_pci=$(div "$m_img_apply_pci" "$m_img_apply")
r_img_set=$(div "$m_img_apply_settings" "$m_img_apply"); r_hivex=$(div "$m_hivex_pair" "$m_apply_pair")
r_check=$(div "$m_apply_pair" "$m_check_pair"); r_noop=$(div "$m_apply_pair" "$m_noop_pair")
r_vwr=$(div "$m_img_vwr" "$m_img_apply"); r_vwr_check=$(div "$m_img_vwr" "$m_img_check")
per_share=$(div "$m_fleet_share" "$NIMG"); per_j2=$(div "$m_fleet_j2" "$NIMG"); per_vwr=$(div "$m_fleet_vwr" "$NIMG")
r_share=$(div "$per_share" "$m_img_apply")
mb () { awk -v s="$1" 'BEGIN{printf "%.1f MiB", s/1048576}'; }
notes=$(awk -v m="$NOTES" 'f{print} $0==m{f=1}' "$out" 2>/dev/null)
qemu=$( (qemu-system-x86_64 --version 2>/dev/null || qemu-img --version) | head -n1)
mkdir -p "$(dirname "$out")"
{
cat <<EOT
# Performance

Generated by \`bench/run.sh\` (\`make bench\`) on $(date -u '+%Y-%m-%d %H:%M UTC'). Reproduce with:

    autoreconf -fi && ./configure -q && make bench
    # more repetitions: make bench BENCH_REPS=5 BENCH_IMG_REPS=3 BENCH_FLEET_REPS=2 (environment variables)

Machine: $(nproc) CPUs ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)),
$(awk '/^MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, kernel $(uname -r),
$( [ -w /dev/kvm ] && echo "KVM available" || echo "no KVM"); LIBGUESTFS_BACKEND_SETTINGS=$LIBGUESTFS_BACKEND_SETTINGS.
Versions: $("$tlspatch" --version | head -n1); hivex $(dpkg-query -W -f '${Version}' libhivex0 2>/dev/null || echo '?');
$(guestfish --version | head -n1); $qemu.

Inputs (generated once by \`bench/gen-hives.awk\` + \`tests/mkhive\`, cached in \`bench/cache/\`):
SOFTWARE hive $(mb "$swsize"), $swkeys keys ($CLSIDS CLSID trees of 5 keys, both
\`.NETFramework\` branches with \`v2.0.50727\`, \`v4.0.30319\`, \`policy\`; .NET 4.8 Release 528040);
SYSTEM hive $(mb "$sysize"), $sykeys keys (3 control sets of $SERVICES services, \`\\Select\`
Current 1 Default 1 LastKnownGood 2, \`obengine\` Start 3); both files padded to the next 256 KiB,
as Windows grows hive files. Images: a 512 MB sparse raw disk, one NTFS partition with
\`/Windows/System32/config/{SOFTWARE,SYSTEM}\`, \`cmd.exe\` (tests/mkpe) and 3,000 more files in
System32, and its qcow2 conversion. Every timed run starts from a fresh unpatched copy (the copy is not timed);
the contenders alternate within each repetition; the page cache is warm for all of them.
Times are medians of the wall clock (bash's \`EPOCHREALTIME\` around each run, 1 µs steps), RSS the largest peak
resident set seen (for image runs it includes the qemu appliance).

Contenders: \`bench/hivex-tools.sh\` does the work with hivex's own tools (hivexregedit --export
of both \`.NETFramework\` branches, hivexget of \`\\Select\`, hivexregedit --merge into SOFTWARE and
into SYSTEM); \`bench/virt-win-reg.sh\` does it with virt-win-reg (two exports, one per branch,
then one \`--merge\` of a .reg for both hives: three appliance launches).

## Results

| case | command | median s | peak RSS MiB | runs |
|---|---|---:|---:|---:|
$(rows)

Per image in case 4: -j 2 ${per_j2} s, --share-appliance $NIMG ${per_share} s, virt-win-reg ${per_vwr} s.

## Targets

| target | measured (same run) | limit | met |
|---|---|---|---|
| apply on a hive file vs dd with fsync | ${r_dd}x dd | <= 1.5x | $(yes "$r_dd" le 1.5) |
| apply --settings (21 keys created in SOFTWARE) vs dd with fsync | ${r_set}x dd | <= 1.5x | $(yes "$r_set" le 1.5) |
| one image: apply --settings (36 keys created) vs KB-only apply | ${r_img_set}x | <= 1.10x | $(yes "$r_img_set" le 1.10) |
| apply --profile pci on SOFTWARE (build 17763: kb4033999 + SystemDefaultTlsVersions) vs dd with fsync | ${r_pci}x dd | <= 1.5x | $(yes "$r_pci" le 1.5) |
| one image: apply --profile pci (SOFTWARE+SYSTEM) vs KB-only apply | ${r_img_pci}x | <= 1.10x | $(yes "$r_img_pci" le 1.10) |
| apply vs hivex tools script (SOFTWARE+SYSTEM) | ${r_hivex}x faster | >= 3x | $(yes "$r_hivex" ge 3) |
| apply peak RSS (SOFTWARE alone) | ${rss_sw_mb} MiB | <= 1.3 x $(mb "$swsize") + 16 MiB = ${rss_limit_mb} MiB | $(yes "$rss_sw_mb" le "$rss_limit_mb") |
| check vs apply | ${r_check}x faster | >= 5x | $(yes "$r_check" ge 5) |
| apply with nothing to change vs apply | ${r_noop}x faster | >= 5x | $(yes "$r_noop" ge 5) |
| one image: apply vs virt-win-reg | ${r_vwr}x faster (check: ${r_vwr_check}x) | >= 2x | $(yes "$r_vwr" ge 2) |
| $NIMG images, --share-appliance $NIMG: per image vs one-image apply | ${r_share}x | <= 0.25x | $(yes "$r_share" le 0.25) |

$NOTES
EOT
if [ -n "$notes" ]; then printf "%s\n" "$notes"; fi
} >"$out.tmp" && mv "$out.tmp" "$out"
cp "$samples" "$cache/samples.last"
log "wrote $out"
cat "$out"
