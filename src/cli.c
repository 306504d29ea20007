/* tlspatch: the command line, a thin layer over the library. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlspatch/tlspatch.h"

static const char usage_text[] =
  "Usage:\n"
  "  tlspatch apply  [OPTIONS] TARGET...   set .NET strong crypto (KB 4033999)\n"
  "  tlspatch check  [OPTIONS] TARGET...   audit only; never writes\n"
  "  tlspatch revert --undo FILE TARGET... restore the values an apply changed\n"
  "\n"
  "TARGET is a SOFTWARE or SYSTEM hive file, or a directory: a mounted Windows\n"
  "volume, its Windows folder, or a System32/config folder.\n"
  "\n"
  "Options:\n"
  "  --json                  JSON Lines on stdout, one object per hive\n"
  "  -n, --dry-run           apply/revert: show what would change, write nothing\n"
  "  --undo FILE             apply: record previous values in FILE (.reg);\n"
  "                          revert: the record to restore\n"
  "  --backup                keep the original hive as HIVE.tlspatch-bak\n"
  "  --system-default-tls    also set SystemDefaultTlsVersions=1\n"
  "  --service NAME          service to start at next boot (repeatable; default obengine)\n"
  "  --no-service            leave the SYSTEM hive alone\n"
  "  -q, --quiet             print errors only\n"
  "  -v, --verbose           print every change and the .NET version\n"
  "  --help, --version\n"
  "\n"
  "Exit status: 0 done or compliant, 1 error on any target, 2 usage error,\n"
  "3 check found something not compliant.\n";

typedef struct {
  tp_options opt;
  bool json, quiet;
  int verbose;
  const char **services;
  size_t n_services;
  char **targets;
  int n_targets;
} cli;

static int
usage_error (const char *msg)
{
  fprintf (stderr, "tlspatch: %s\nTry 'tlspatch --help' for more information.\n", msg);
  return TP_EXIT_USAGE;
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
  else
    return -1;
  return 0;
}

enum { OPT_JSON = 256, OPT_UNDO, OPT_BACKUP, OPT_SDT, OPT_SERVICE, OPT_NO_SERVICE,
       OPT_HELP, OPT_VERSION };

/* Returns -1 to go on, or an exit status. */
static int
parse_args (int argc, char **argv, cli *c)
{
  static const struct option longopts[] = {
    { "json", no_argument, NULL, OPT_JSON },
    { "dry-run", no_argument, NULL, 'n' },
    { "undo", required_argument, NULL, OPT_UNDO },
    { "backup", no_argument, NULL, OPT_BACKUP },
    { "system-default-tls", no_argument, NULL, OPT_SDT },
    { "service", required_argument, NULL, OPT_SERVICE },
    { "no-service", no_argument, NULL, OPT_NO_SERVICE },
    { "quiet", no_argument, NULL, 'q' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, OPT_HELP },
    { "version", no_argument, NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 },
  };
  opterr = 0;
  int ch;
  while ((ch = getopt_long (argc, argv, "nqv", longopts, NULL)) != -1) {
    switch (ch) {
    case OPT_JSON: c->json = true; break;
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
    case OPT_HELP: fputs (usage_text, stdout); return TP_EXIT_OK;
    case OPT_VERSION: printf ("tlspatch %s\n", PACKAGE_VERSION); return TP_EXIT_OK;
    default: {
      char msg[128];
      snprintf (msg, sizeof msg, "unknown or incomplete option '%s'", argv[optind - 1]);
      return usage_error (msg);
    }
    }
  }
  if (optind >= argc)
    return usage_error ("missing command (apply, check or revert)");
  if (parse_mode (argv[optind], &c->opt.mode) < 0) {
    char msg[128];
    snprintf (msg, sizeof msg, "unknown command '%s'", argv[optind]);
    return usage_error (msg);
  }
  c->targets = argv + optind + 1;
  c->n_targets = argc - optind - 1;
  if (c->n_targets == 0)
    return usage_error ("no TARGET given");
  if (c->opt.mode == TP_MODE_REVERT && !c->opt.undo_path)
    return usage_error ("revert needs --undo FILE");
  if (c->opt.mode == TP_MODE_CHECK && c->opt.undo_path)
    return usage_error ("--undo is for apply and revert");
  if (c->n_services) {
    c->opt.services = c->services;
    c->opt.n_services = c->n_services;
  }
  return -1;
}

static void
print_result (const cli *c, const tp_result *res, bool *header_done)
{
  if (res->status == TP_STATUS_ERROR)
    fprintf (stderr, "tlspatch: %s: %s\n", res->target ? res->target : "?",
             res->error ? res->error : "failed");
  if (c->json) {
    tp_report_print_json (stdout, res);
    return;
  }
  if (c->quiet)
    return;
  if (!*header_done) {
    tp_report_print_header (stdout);
    *header_done = true;
  }
  tp_report_print_row (stdout, res, c->verbose);
}

/* Run every hive of every target; one failure does not stop the rest. */
static int
run (cli *c, tp_undo_ctx *undo)
{
  tp_result *results = NULL;
  size_t n = 0;
  bool header_done = false;
  for (int i = 0; i < c->n_targets; i++) {
    tp_target t;
    tp_target_resolve (c->targets[i], !c->opt.no_service, &t);
    tp_result *more = realloc (results, (n + t.n_hives) * sizeof *more);
    if (!more) {
      tp_target_free (&t);
      break;
    }
    results = more;
    for (size_t k = 0; k < t.n_hives; k++) {
      tp_result *res = &results[n++];
      tp_result_init (res, t.hives[k].path ? t.hives[k].path : c->targets[i]);
      res->kind = t.hives[k].expect;
      if (t.hives[k].error)
        tp_result_fail (res, "%s", t.hives[k].error);
      else
        tp_process_hive (&c->opt, t.hives[k].path, t.hives[k].expect, undo, res);
      print_result (c, res, &header_done);
      fflush (stdout);
    }
    tp_target_free (&t);
  }
  int rc = tp_exit_status (c->opt.mode, results, n);
  for (size_t i = 0; i < n; i++)
    tp_result_free (&results[i]);
  free (results);
  return rc;
}

int
main (int argc, char **argv)
{
  /* A file-size limit must surface as EFBIG from write(), not kill us
   * half-way through a temp file. */
  signal (SIGXFSZ, SIG_IGN);

  cli c = { 0 };
  tp_options_init (&c.opt);
  c.services = calloc ((size_t) argc, sizeof *c.services);
  if (!c.services)
    return TP_EXIT_ERROR;
  int rc = parse_args (argc, argv, &c);
  if (rc >= 0) {
    free (c.services);
    return rc;
  }

  tp_undo_ctx undo = { 0 };
  tp_undo_doc *doc = NULL;
  if (c.opt.mode == TP_MODE_REVERT) {
    char why[512];
    doc = tp_undo_load (c.opt.undo_path, why, sizeof why);
    if (!doc) {
      fprintf (stderr, "tlspatch: %s\n", why);
      free (c.services);
      return TP_EXIT_ERROR;
    }
    undo.undo_doc = doc;
  } else if (c.opt.mode == TP_MODE_APPLY && c.opt.undo_path && !c.opt.dry_run) {
    undo.undo_writer = tp_undo_writer_new (c.opt.undo_path);
    if (!undo.undo_writer) {
      free (c.services);
      return TP_EXIT_ERROR;
    }
  }

  rc = run (&c, &undo);
  tp_undo_writer_free (undo.undo_writer);
  tp_undo_free (doc);
  free (c.services);
  return rc;
}
