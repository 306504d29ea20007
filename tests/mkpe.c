/* mkpe: write a minimal PE32+ (x86-64 console) executable stub.
 *
 * libguestfs inspection recognises Windows by System32/cmd.exe and takes
 * the architecture from what file(1) says about it, so the test images
 * need a real PE header, not an empty file. Nothing ever runs it. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void
put16 (unsigned char *p, uint16_t v)
{
  p[0] = v & 0xff;
  p[1] = v >> 8;
}

static void
put32 (unsigned char *p, uint32_t v)
{
  put16 (p, v & 0xffff);
  put16 (p + 2, v >> 16);
}

int
main (int argc, char **argv)
{
  if (argc != 2) {
    fprintf (stderr, "usage: mkpe OUTPUT\n");
    return 2;
  }
  unsigned char pe[1024];
  memset (pe, 0, sizeof pe);

  memcpy (pe, "MZ", 2);                 /* DOS header */
  put32 (pe + 0x3c, 0x80);              /* e_lfanew */

  unsigned char *nt = pe + 0x80;
  memcpy (nt, "PE\0\0", 4);
  unsigned char *coff = nt + 4;
  put16 (coff + 0, 0x8664);             /* Machine: x86-64 */
  put16 (coff + 2, 1);                  /* NumberOfSections */
  put16 (coff + 16, 240);               /* SizeOfOptionalHeader */
  put16 (coff + 18, 0x0022);            /* EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE */

  unsigned char *opt = coff + 20;
  put16 (opt + 0, 0x20b);               /* PE32+ */
  put32 (opt + 16, 0x1000);             /* AddressOfEntryPoint */
  put32 (opt + 24, 0);                  /* ImageBase (low) */
  put32 (opt + 28, 0x1);                /* ImageBase (high): 0x100000000 */
  put32 (opt + 32, 0x1000);             /* SectionAlignment */
  put32 (opt + 36, 0x200);              /* FileAlignment */
  put16 (opt + 40, 6);                  /* MajorOperatingSystemVersion */
  put16 (opt + 48, 6);                  /* MajorSubsystemVersion */
  put32 (opt + 56, 0x2000);             /* SizeOfImage */
  put32 (opt + 60, 0x200);              /* SizeOfHeaders */
  put16 (opt + 68, 3);                  /* Subsystem: console */
  put32 (opt + 108, 16);                /* NumberOfRvaAndSizes */

  unsigned char *sec = opt + 240;       /* one section: .text */
  memcpy (sec, ".text", 5);
  put32 (sec + 8, 0x10);                /* VirtualSize */
  put32 (sec + 12, 0x1000);             /* VirtualAddress */
  put32 (sec + 16, 0x200);              /* SizeOfRawData */
  put32 (sec + 20, 0x200);              /* PointerToRawData */
  put32 (sec + 36, 0x60000020);         /* code, execute, read */
  pe[0x200] = 0xc3;                     /* ret */

  FILE *fp = fopen (argv[1], "wb");
  if (!fp || fwrite (pe, 1, sizeof pe, fp) != sizeof pe || fclose (fp) != 0) {
    perror (argv[1]);
    return 1;
  }
  return 0;
}
