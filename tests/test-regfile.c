#include "tlspatch/regfile.h"
int main(void){return 0;}
