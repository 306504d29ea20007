/* tlspatch: the command line, a thin layer over the library. */
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tlspatch/junit.h"
#include "tlspatch/run.h"

static const char usage_head[] =
  "Usage:\n"
  "  tlspatch apply  [OPTIONS] TARGET...   make the profiles' settings true\n"
  "                                        (default: KB 4033999, .NET strong crypto)\n"
  "  tlspatch check  [OPTIONS] TARGET...   audit only; never writes\n"
  "  tlspatch revert --undo FILE TARGET... restore the values an apply changed\n"
  "  tlspatch recover [OPTIONS] TARGET...  replay a dirty hive's transaction logs\n"
  "                                        (any hive: SAM, NTUSER.DAT, ...)\n"
  "  tlspatch profiles [NAME]              list the profiles, or show what NAME sets\n"
  "\n"
  "TARGET is a SOFTWARE or SYSTEM hive file, a directory (a mounted Windows\n"
  "volume, its Windows folder, or a System32/config folder), or a disk image\n"
  "(raw, qcow2, vmdk, vhdx, vpc), a block device (/dev/sdc) or an image URI such\n"
  "as nbd://HOST:PORT/NAME.\n"
  "\n"
  "Options:\n"
  "  --json                  JSON Lines on stdout, one object per hive\n"
  "  --junit FILE            also write a JUnit XML report to FILE (CI servers):\n"
  "                          a test case per hive or Windows installation\n"
  "  -n, --dry-run           apply/revert: show what would change, write nothing\n"
  "  --undo FILE             apply: record previous values in FILE (.reg);\n"
  "                          revert: the record to restore\n"
  "  --backup                keep the original hive as HIVE.tlspatch-bak\n"
  "  --profile NAME          apply/check: make a profile's settings true (repeatable;\n"
  "                          default kb4033999 when neither --profile nor --settings):\n";

/* (the profiles are listed here) */

static const char usage_tail[] =
  "  --settings FILE         apply/check: make the settings of a .reg file true\n"
  "                          (repeatable; HKLM\\SOFTWARE and HKLM\\SYSTEM,\n"
  "                          CurrentControlSet = the boot control sets); combines\n"
  "                          with --profile, a value set two ways is a usage error\n"
  "  --system-default-tls    kb4033999: also SystemDefaultTlsVersions=1 under every\n"
  "                          .NET version key\n"
  "  --service NAME          service to start at next boot (repeatable; default obengine)\n"
  "  --no-service            start no service (the SYSTEM hive is left alone unless\n"
  "                          a profile or settings file has values for it)\n"
  "  --no-recover            refuse dirty hives instead of replaying their logs\n"
  "  -a IMAGE                a disk image or URI (same as giving it as TARGET)\n"
  "  -d DOMAIN               the disks of a libvirt domain (repeatable); apply,\n"
  "                          revert and recover refuse a running domain\n"
  "  -c URI                  the libvirt connection for -d (e.g. qemu:///system)\n"
  "  --format FMT            the format (raw, qcow2, vmdk, vhdx, vpc) of the -a images\n"
  "                          after it, and of images given as TARGET (the last one\n"
  "                          given); auto: detected safely again, and an image\n"
  "                          with a backing file is refused\n"
  "  -j N                    patch N images in parallel (one appliance each)\n"
  "  --share-appliance K     up to K images per appliance launch: faster, but only\n"
  "                          for images you trust (one guest could attack another)\n"
  "  --tcg                   software emulation from the start (no KVM)\n"
  "  -x                      trace libguestfs calls on stderr (as guestfish -x)\n"
  "  -q, --quiet             print errors only\n"
  "  -v, --verbose           print every change and the .NET version\n"
  "  -h, --help              this help\n"
  "  -V, --version           tlspatch's version and those of hivex, libguestfs, json-c\n"
  "\n"
  "Exit status: 0 done or compliant, 1 error on any target, 2 usage error,\n"
  "3 check found something not compliant.\n";

typedef struct {
  tp_options opt;
  tp_image_options iopt;
  bool json, quiet;
  const char *junit_path;       /* --junit */
  tp_junit *junit;
  int verbose;
  const char *format;           /* --format in force: NULL detects */
  bool format_given;
  const char **formats;         /* each target's */
  bool *format_reached;         /* a --format (even auto) came before it */
  const char **services;
  size_t n_services;
  const char **settings_files;  /* --settings */
  size_t n_settings_files;
  const tp_profile **profiles;  /* --profile */
  size_t n_profiles;
  const char **targets;         /* hive files, directories, images */
  int n_targets;
  bool *forced_image;           /* given with -a */
  bool *domain;                 /* given with -d */
  /* results so far, for the exit status */
  bool any_error, any_noncompliant, header_done, junit_failed;
  bool stage_lines;             /* progress of images on a terminal */
} cli;

/* A signal asks to stop: the hive or image under way is finished (an
 * image is synced and shut down), the rest are not started. A second
 * signal acts at once (SA_RESETHAND). */
static volatile sig_atomic_t stop_requested;

static void
request_stop (int sig)
{
  (void) sig;
  stop_requested = 1;
  static const char msg[] = "tlspatch: stopping after the work under way (again to abort)\n";
  ssize_t ignored = write (STDERR_FILENO, msg, sizeof msg - 1);
  (void) ignored;
}

static void
install_signal_handlers (void)
{
  struct sigaction sa = { .sa_handler = request_stop, .sa_flags = SA_RESETHAND };
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
}

static int
usage_error (const char *msg)
{
  fprintf (stderr, "tlspatch: %s\nTry 'tlspatch --help' for more information.\n", msg);
  return TP_EXIT_USAGE;
}

static void
print_usage (void)
{
  size_t n;
  const tp_profile *const *all = tp_profiles (&n);
  fputs (usage_head, stdout);
  for (size_t i = 0; i < n; i++)
    printf ("                            %-10s %s\n", all[i]->name, all[i]->brief);
  fputs (usage_tail, stdout);
}

/* The profile called `name`; NULL after a usage error saying so. */
static const tp_profile *
find_profile (const char *name)
{
  const tp_profile *p = tp_profile_find (name);
  if (!p) {
    char msg[160];
    snprintf (msg, sizeof msg, "no profile '%.64s' (see 'tlspatch profiles')", name);
    usage_error (msg);
  }
  return p;
}

/* `tlspatch profiles [NAME]`. */
static int
show_profiles (int argc, char **argv)
{
  if (argc > 1)
    return usage_error ("profiles takes at most one NAME");
  if (argc == 1) {
    const tp_profile *p = find_profile (argv[0]);
    if (!p)
      return TP_EXIT_USAGE;
    tp_profile_write (stdout, p);
    return TP_EXIT_OK;
  }
  size_t n;
  const tp_profile *const *all = tp_profiles (&n);
  for (size_t i = 0; i < n; i++)
    printf ("%-10s %s\n", all[i]->name, all[i]->summary);
  return TP_EXIT_OK;
}

static int
parse_mode (const char *word, tp_mode *mode)
{
  if (strcmp (word, "apply") == 0)
    *mode = TP_MODE_APPLY;
  else if (strcmp (word, "check") == 0)
    *mode = TP_MODE_CHECK;
  else if (strcmp (word, "revert") == 0)
    *mode = TP_MODE_REVERT;
  else if (strcmp (word, "recover") == 0)
    *mode = TP_MODE_RECOVER;
  else
    return -1;
  return 0;
}

enum { OPT_JSON = 256, OPT_UNDO, OPT_BACKUP, OPT_SDT, OPT_SERVICE, OPT_NO_SERVICE,
       OPT_FORMAT, OPT_SHARE, OPT_TCG, OPT_NO_RECOVER,
       OPT_SETTINGS, OPT_PROFILE, OPT_JUNIT };

static int
parse_count (const char *arg, const char *what, int *out)
{
  char *end;
  long v = strtol (arg, &end, 10);
  if (*end || v < 1 || v > 255) {
    char msg[128];
    snprintf (msg, sizeof msg, "%s takes a number from 1 to 255", what);
    return usage_error (msg);
  }
  *out = (int) v;
  return -1;
}

/* An option that would do nothing in this mode, said as a usage error
 * (NULL: none). */
static const char *
idle_option (const cli *c)
{
  tp_mode m = c->opt.mode;
  bool plans = m == TP_MODE_APPLY || m == TP_MODE_CHECK;
  if (m == TP_MODE_CHECK && c->opt.backup)
    return "check never writes: --backup is for apply, revert and recover";
  if (m == TP_MODE_CHECK && c->opt.dry_run)
    return "check never writes: --dry-run is for apply, revert and recover";
  if (c->opt.no_service && c->n_services)
    return "--service and --no-service contradict each other";
  if (!plans && (c->n_services || c->opt.no_service))
    return "--service and --no-service are for apply and check";
  if (!plans && c->opt.system_default_tls)
    return "--system-default-tls is for apply and check";
  return NULL;
}

/* A path named by its folder's real path (the file itself may not exist
 * yet); NULL when the folder does not exist. */
static char *
canonical (const char *path)
{
  char *d = strdup (path), *b = strdup (path), *dir = NULL, *out = NULL;
  if (d && b && (dir = realpath (dirname (d), NULL)) &&
      asprintf (&out, "%s/%s", dir, basename (b)) < 0)
    out = NULL;
  free (d);
  free (b);
  free (dir);
  return out;
}

static bool
same_file (const char *a, const char *b)
{
  struct stat sa, sb;
  if (stat (a, &sa) == 0 && stat (b, &sb) == 0)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  char *ca = canonical (a), *cb = canonical (b);
  bool same = ca && cb && strcmp (ca, cb) == 0;
  free (ca);
  free (cb);
  return same;
}

/* --junit must not name the undo record or a target: the report would
 * be renamed over it at the end. */
static const char *
junit_clash (const cli *c)
{
  if (c->opt.undo_path && same_file (c->junit_path, c->opt.undo_path))
    return "--junit names the undo record";
  for (int i = 0; i < c->n_targets; i++)
    if (same_file (c->junit_path, c->targets[i]))
      return "--junit names a TARGET";
  return NULL;
}

/* Returns -1 to go on, or an exit status. */
static int
parse_args (int argc, char **argv, cli *c)
{
  static const struct option longopts[] = {
    { "json", no_argument, NULL, OPT_JSON },
    { "junit", required_argument, NULL, OPT_JUNIT },
    { "dry-run", no_argument, NULL, 'n' },
    { "undo", required_argument, NULL, OPT_UNDO },
    { "backup", no_argument, NULL, OPT_BACKUP },
    { "system-default-tls", no_argument, NULL, OPT_SDT },
    { "service", required_argument, NULL, OPT_SERVICE },
    { "no-service", no_argument, NULL, OPT_NO_SERVICE },
    { "quiet", no_argument, NULL, 'q' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { "format", required_argument, NULL, OPT_FORMAT },
    { "share-appliance", required_argument, NULL, OPT_SHARE },
    { "tcg", no_argument, NULL, OPT_TCG },
    { "no-recover", no_argument, NULL, OPT_NO_RECOVER },
    { "settings", required_argument, NULL, OPT_SETTINGS },
    { "profile", required_argument, NULL, OPT_PROFILE },
    { NULL, 0, NULL, 0 },
  };
  opterr = 0;
  int ch;
  int rc;
  while ((ch = getopt_long (argc, argv, "nqvxhVa:d:c:j:", longopts, NULL)) != -1) {
    switch (ch) {
    case 'a':
      c->forced_image[c->n_targets] = true;
      c->formats[c->n_targets] = c->format;
      c->format_reached[c->n_targets] = c->format_given;
      c->targets[c->n_targets++] = optarg;
      break;
    case 'd':
      c->domain[c->n_targets] = true;
      c->formats[c->n_targets] = NULL;      /* libvirt knows each disk's format */
      c->targets[c->n_targets++] = optarg;
      break;
    case 'c': c->iopt.libvirt_uri = optarg; break;
    case 'j':
      if ((rc = parse_count (optarg, "-j", &c->iopt.jobs)) >= 0)
        return rc;
      break;
    case OPT_SHARE:
      if ((rc = parse_count (optarg, "--share-appliance", &c->iopt.share)) >= 0)
        return rc;
      break;
    case OPT_TCG: c->iopt.force_tcg = true; break;
    case 'x': c->iopt.trace = true; break;
    case OPT_NO_RECOVER: c->opt.no_recover = true; break;
    case OPT_SETTINGS: c->settings_files[c->n_settings_files++] = optarg; break;
    case OPT_PROFILE:
      if (!(c->profiles[c->n_profiles++] = find_profile (optarg)))
        return TP_EXIT_USAGE;
      break;
    case OPT_FORMAT:
      if (strcmp (optarg, "raw") && strcmp (optarg, "qcow2") && strcmp (optarg, "vmdk") &&
          strcmp (optarg, "vhdx") && strcmp (optarg, "vpc") && strcmp (optarg, "auto"))
        return usage_error ("--format takes raw, qcow2, vmdk, vhdx, vpc or auto");
      c->format = strcmp (optarg, "auto") ? optarg : NULL;
      c->format_given = true;
      break;
    case OPT_JSON: c->json = true; break;
    case OPT_JUNIT: c->junit_path = optarg; break;
    case 'n': c->opt.dry_run = true; break;
    case OPT_UNDO: c->opt.undo_path = optarg; break;
    case OPT_BACKUP: c->opt.backup = true; break;
    case OPT_SDT: c->opt.system_default_tls = true; break;
    case OPT_NO_SERVICE: c->opt.no_service = true; break;
    case 'q': c->quiet = true; break;
    case 'v': c->verbose++; break;
    case OPT_SERVICE:
      if (!optarg[0] || strchr (optarg, '\\') || strchr (optarg, '/'))
        return usage_error ("--service takes a service key name (no slashes)");
      c->services[c->n_services++] = optarg;
      break;
    case 'h': print_usage (); return TP_EXIT_OK;
    case 'V': {
      char v[512];
      tp_versions (v, sizeof v);
      fputs (v, stdout);
      return TP_EXIT_OK;
    }
    default: {
      char msg[128];
      snprintf (msg, sizeof msg, "unknown or incomplete option '%s'", argv[optind - 1]);
      return usage_error (msg);
    }
    }
  }
  if (optind >= argc)
    return usage_error ("missing command (apply, check, revert, recover or profiles)");
  if (strcmp (argv[optind], "profiles") == 0)
    return show_profiles (argc - optind - 1, argv + optind + 1);
  if (parse_mode (argv[optind], &c->opt.mode) < 0) {
    char msg[128];
    snprintf (msg, sizeof msg, "unknown command '%s'", argv[optind]);
    return usage_error (msg);
  }
  for (int i = optind + 1; i < argc; i++) {
    c->formats[c->n_targets] = c->format;
    c->format_reached[c->n_targets] = c->format_given;
    c->targets[c->n_targets++] = argv[i];
  }
  if (c->n_targets == 0)
    return usage_error ("no TARGET given");
  if (c->opt.mode == TP_MODE_REVERT && !c->opt.undo_path)
    return usage_error ("revert needs --undo FILE");
  if ((c->opt.mode == TP_MODE_CHECK || c->opt.mode == TP_MODE_RECOVER) && c->opt.undo_path)
    return usage_error ("--undo is for apply and revert");
  if ((c->n_settings_files || c->n_profiles) && c->opt.mode != TP_MODE_APPLY &&
      c->opt.mode != TP_MODE_CHECK)
    return usage_error ("--profile and --settings are for apply and check");
  bool any_domain = false;
  for (int i = 0; i < c->n_targets; i++)
    any_domain = any_domain || c->domain[i];
  if (c->iopt.libvirt_uri && !any_domain)
    return usage_error ("-c URI is the libvirt connection of the -d domains, and none is given");
  if (c->opt.mode == TP_MODE_RECOVER && c->opt.no_recover)
    return usage_error ("recover and --no-recover contradict each other");
  const char *idle = idle_option (c);
  if (idle)
    return usage_error (idle);
  const char *clash = c->junit_path ? junit_clash (c) : NULL;
  if (clash)
    return usage_error (clash);
  if (c->n_services) {
    c->opt.services = c->services;
    c->opt.n_services = c->n_services;
  }
  return -1;
}

/* The row (or JSON object) first, then its error on stderr: piped
 * together, each error follows the row it explains. */
static void
print_result (cli *c, const tp_result *res)
{
  if (res->status == TP_STATUS_NONCOMPLIANT)
    c->any_noncompliant = true;
  if (c->json)
    tp_report_print_json (stdout, res);
  else if (!c->quiet) {
    if (!c->header_done) {
      tp_report_print_header (stdout);
      c->header_done = true;
    }
    tp_report_print_row (stdout, res, c->verbose);
  }
  fflush (stdout);
  if (c->junit && tp_junit_add (c->junit, res) != 0)
    c->junit_failed = true;
  if (res->status == TP_STATUS_ERROR) {
    c->any_error = true;
    fprintf (stderr, "tlspatch: %s: %s\n", res->target ? res->target : "?",
             res->error ? res->error : "failed");
  }
}

/* Stages on a terminal, one line per image (updated in place with -j 1);
 * notices always, unless -q. */
static void
print_progress (const char *image, const char *what, double seconds, bool notice, void *ctx)
{
  const cli *c = ctx;
  if (notice) {
    fprintf (stderr, "%stlspatch: %s: %s\n", c->stage_lines ? "\r\033[K" : "", image, what);
    return;
  }
  if (!c->stage_lines)
    return;
  bool last = strcmp (what, "done") == 0 || strcmp (what, "failed") == 0;
  if (c->iopt.jobs <= 1)
    fprintf (stderr, "\r\033[K%s: %s (%.1fs)%s", image, what, seconds, last ? "\n" : "");
  else
    fprintf (stderr, "%s: %s (%.1fs)\n", image, what, seconds);
  fflush (stderr);
}

static void
print_image_result (tp_result *res, void *opaque)
{
  print_result (opaque, res);
}

static int
run (cli *c)
{
  tp_run_target *targets = calloc ((size_t) c->n_targets + 1, sizeof *targets);
  if (!targets)
    return TP_EXIT_ERROR;
  for (int i = 0; i < c->n_targets; i++)
    targets[i] = (tp_run_target) { .arg = c->targets[i], .image = c->forced_image[i],
                                   .domain = c->domain[i], .format = c->formats[i] };
  bool formatted_image = false;   /* an image that a --format reached */
  for (int i = 0; i < c->n_targets; i++)
    formatted_image = formatted_image || (c->format_reached[i] && !c->domain[i] &&
                                          tp_run_target_is_image (&targets[i]));
  if (c->format_given && !formatted_image) {
    free (targets);
    return usage_error ("--format applies to the disk images after it, and none follows it");
  }
  char why[512];
  if (c->junit_path && !(c->junit = tp_junit_open (c->junit_path, c->opt.mode, why, sizeof why))) {
    free (targets);
    fprintf (stderr, "tlspatch: %s\n", why);
    return TP_EXIT_ERROR;
  }
  c->iopt.stop = &stop_requested;
  c->stage_lines = !c->quiet && isatty (STDERR_FILENO);
  if (!c->quiet) {
    c->iopt.progress = print_progress;
    c->iopt.progress_ctx = c;
  }
  tp_run_ctx run = { .opt = &c->opt, .iopt = &c->iopt,
                     .emit = print_image_result, .emit_ctx = c };
  tp_run (&run, targets, (size_t) c->n_targets);
  free (targets);
  if (c->junit && (c->junit_failed || tp_junit_commit (c->junit, why, sizeof why) != 0)) {
    if (c->junit_failed)
      snprintf (why, sizeof why, "%s: out of memory building the JUnit report", c->junit_path);
    fprintf (stderr, "tlspatch: %s\n", why);
    c->any_error = true;
  }
  tp_junit_free (c->junit);
  if (c->any_error)
    return TP_EXIT_ERROR;
  return c->any_noncompliant && c->opt.mode == TP_MODE_CHECK ? TP_EXIT_NONCOMPLIANT : TP_EXIT_OK;
}

int
main (int argc, char **argv)
{
  /* A file-size limit must surface as EFBIG from write(), not kill us
   * half-way through a temp file. */
  signal (SIGXFSZ, SIG_IGN);
  install_signal_handlers ();

  cli c = { 0 };
  tp_options_init (&c.opt);
  c.iopt.jobs = 1;
  c.iopt.share = 1;
  c.services = calloc ((size_t) argc, sizeof *c.services);
  c.targets = calloc ((size_t) argc, sizeof *c.targets);
  c.settings_files = calloc ((size_t) argc, sizeof *c.settings_files);
  c.profiles = calloc ((size_t) argc, sizeof *c.profiles);
  tp_settings settings = { 0 };
  c.forced_image = calloc ((size_t) argc, sizeof *c.forced_image);
  c.domain = calloc ((size_t) argc, sizeof *c.domain);
  c.formats = calloc ((size_t) argc, sizeof *c.formats);
  c.format_reached = calloc ((size_t) argc, sizeof *c.format_reached);
  int rc = TP_EXIT_ERROR;
  if (c.services && c.targets && c.forced_image && c.domain && c.formats && c.format_reached && c.settings_files && c.profiles)
    rc = parse_args (argc, argv, &c);
  if (rc >= 0)
    goto out;

  /* The profiles, then every settings file, before anything is
   * touched: a malformed file, or two sources that set one value
   * differently, is a usage error. */
  char why[512];
  for (size_t i = 0; i < c.n_profiles; i++)
    if (tp_settings_add_profile (&settings, c.profiles[i], &c.opt, why, sizeof why) != 0) {
      fprintf (stderr, "tlspatch: %s\n", why);
      rc = TP_EXIT_USAGE;
      goto out;
    }
  for (size_t i = 0; i < c.n_settings_files; i++)
    if (tp_settings_add_file (&settings, c.settings_files[i], why, sizeof why) != 0) {
      fprintf (stderr, "tlspatch: %s\n", why);
      rc = TP_EXIT_USAGE;
      goto out;
    }
  if (c.n_settings_files || c.n_profiles)
    c.opt.settings = &settings;

  rc = run (&c);
 out:
  free (c.services);
  free (c.targets);
  free (c.forced_image);
  free (c.domain);
  free (c.formats);
  free (c.format_reached);
  free (c.settings_files);
  free (c.profiles);
  tp_settings_free (&settings);
  return rc;
}
