#include <stdio.h>

int main(void) {
  puts("hello from a static C program built by barge");
  return 0;
}
