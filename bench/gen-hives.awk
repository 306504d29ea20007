# Generate the benchmark's big .reg texts for tests/mkhive (see fixtures/README.md).
#   awk -v which=software -v n=52000 -f bench/gen-hives.awk > software.reg
#   awk -v which=system   -v n=400   -f bench/gen-hives.awk > system.reg
# software: n CLSID-like trees of 5 keys each (\Classes\CLSID\{g},
#   InprocServer32, ProgID, Implemented Categories, Implemented Categories\{c})
#   with string values and a 500-byte REG_BINARY per CLSID, both .NETFramework
#   branches (v2.0.50727, v4.0.30319, policy), NDP v4 Full Release 528040, and
#   Windows NT\CurrentVersion for libguestfs inspection.
# system: \Select Current 1 Default 1 LastKnownGood 2; three control sets of n
#   services each (plus obengine Start 3 and Tcpip\Parameters Hostname).
# Deterministic: the same n gives the same text.
function guid(i, s,   a, b, c, d, e) {
  a = (i * 2654435761 + s) % 4294967296
  b = (i * 40503 + s) % 65536; c = (i * 2237 + 17 * s) % 65536
  d = (i * 977 + 3 * s) % 65536; e = (i * 2971215073 + s) % 4294967296
  return sprintf("{%08X-%04X-%04X-%04X-%04X%08X}", a, b, c, d, (i + s) % 65536, e)
}
function software(   i, g, p) {
  for (i = 1; i <= n; i++) {
    g = guid(i, 7)
    p = (i % 4 == 0) ? "\\Wow6432Node\\Classes\\CLSID\\" : "\\Classes\\CLSID\\"
    printf "[%s%s]\n@=\"Component %d Class\"\n\"AppID\"=\"%s\"\n", p, g, i, guid(i, 11)
    printf "\"Blob\"=fill(3):500,%02x\n\n", i % 256
    printf "[%s%s\\InprocServer32]\n@=\"C:\\\\Windows\\\\System32\\\\comp%06d.dll\"\n\"ThreadingModel\"=\"Both\"\n\n", p, g, i
    printf "[%s%s\\ProgID]\n@=\"Vendor%d.Component%d.1\"\n\n", p, g, i % 97, i
    printf "[%s%s\\Implemented Categories]\n\n", p, g
    printf "[%s%s\\Implemented Categories\\%s]\n\n", p, g, guid(i % 50, 13)
  }
  netfx("\\Microsoft\\.NETFramework", "Framework64")
  netfx("\\Wow6432Node\\Microsoft\\.NETFramework", "Framework")
  print "[\\Microsoft\\NET Framework Setup\\NDP\\v4\\Full]"
  print "\"Install\"=dword:00000001\n\"Version\"=\"4.8.03761\"\n\"Release\"=dword:00080ea8"
  print "\"TargetVersion\"=\"4.0.0\"\n\"InstallPath\"=\"C:\\\\Windows\\\\Microsoft.NET\\\\Framework64\\\\v4.0.30319\\\\\"\n"
  print "[\\Microsoft\\Windows\\CurrentVersion]\n\"ProgramFilesDir\"=\"C:\\\\Program Files\"\n"
  print "[\\Microsoft\\Windows NT\\CurrentVersion]"
  print "\"ProductName\"=\"Windows Server 2019 Datacenter\"\n\"CurrentVersion\"=\"6.3\""
  print "\"CurrentBuildNumber\"=\"17763\"\n\"CurrentBuild\"=\"17763\"\n\"InstallationType\"=\"Server\""
  print "\"EditionID\"=\"ServerDatacenter\"\n\"CurrentMajorVersionNumber\"=dword:0000000a"
  print "\"CurrentMinorVersionNumber\"=dword:00000000\n\"SystemRoot\"=\"C:\\\\Windows\"\n\"ReleaseId\"=\"1809\"\n"
}
function netfx(b, fw) {
  printf "[%s]\n\"InstallRoot\"=\"C:\\\\Windows\\\\Microsoft.NET\\\\%s\\\\\"\n\"Enable64Bit\"=dword:00000001\n\n", b, fw
  printf "[%s\\policy]\n\n[%s\\policy\\v2.0]\n\"50727\"=\"50727-50727\"\n\n", b, b
  printf "[%s\\policy\\v4.0]\n\"30319\"=\"30319-30319\"\n\n", b
  printf "[%s\\v2.0.50727]\n\"Description\"=\".NET Framework 2.0 runtime\"\n\n", b
  printf "[%s\\v2.0.50727\\NGenService]\n\"Start\"=dword:00000003\n\n", b
  printf "[%s\\v4.0.30319]\n\"AspNetEnforceViewStateMac\"=dword:00000001\n\n", b
  printf "[%s\\v4.0.30319\\SKUs\\.NETFramework,Version=v4.8]\n\n", b
}
function systemhive(   cs, i, c) {
  print "[\\Select]\n\"Current\"=dword:00000001\n\"Default\"=dword:00000001"
  print "\"LastKnownGood\"=dword:00000002\n\"Failed\"=dword:00000000\n"
  print "[\\MountedDevices]\n\n[\\Setup]\n\"SystemSetupInProgress\"=dword:00000000\n"
  for (cs = 1; cs <= 3; cs++) {
    c = sprintf("\\ControlSet%03d", cs)
    printf "[%s\\Control]\n\"SystemBootDevice\"=\"multi(0)disk(0)rdisk(0)partition(1)\"\n\n", c
    printf "[%s\\Control\\ComputerName\\ComputerName]\n\"ComputerName\"=\"BENCH2019\"\n\n", c
    printf "[%s\\Services\\Tcpip\\Parameters]\n\"Hostname\"=\"bench2019\"\n\"Domain\"=\"\"\n\n", c
    printf "[%s\\Services\\obengine]\n\"Type\"=dword:00000010\n\"Start\"=dword:00000003\n", c
    printf "\"ErrorControl\"=dword:00000001\n\"DisplayName\"=\"Microsoft Azure Recovery Services Agent\"\n\n"
    for (i = 1; i <= n; i++) {
      printf "[%s\\Services\\svc%04d]\n\"Type\"=dword:00000010\n\"Start\"=dword:%08x\n", c, i, 2 + i % 3
      printf "\"ErrorControl\"=dword:00000001\n\"ImagePath\"=\"C:\\\\Windows\\\\System32\\\\svc%04d.exe\"\n", i
      printf "\"DisplayName\"=\"Benchmark service %d\"\n\"Description\"=\"Synthetic service number %d.\"\n", i, i
      printf "\"FailureActions\"=fill(3):4000,%02x\n\n", i % 256
      printf "[%s\\Services\\svc%04d\\Parameters]\n\"ServiceDll\"=\"C:\\\\Windows\\\\System32\\\\svc%04d.dll\"\n", c, i, i
      printf "\"Config\"=fill(3):6000,%02x\n\n", (i * 7) % 256
      printf "[%s\\Services\\svc%04d\\Security]\n\"Security\"=fill(3):2500,%02x\n\n", c, i, (i * 3) % 256
    }
  }
}
BEGIN {
  print "Windows Registry Editor Version 5.00\n"
  if (which == "software") software()
  else if (which == "system") systemhive()
  else { print "gen-hives.awk: which=software|system" > "/dev/stderr"; exit 2 }
}
