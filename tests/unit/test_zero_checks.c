/*
 * test_zero_checks.c: a unit test that runs no check. The harness must
 * report it as failed (ctest expects it to fail: WILL_FAIL), since a test
 * that checked nothing proves nothing.
 */
#include "testhelp.h"

int main(void)
{
    TEST_REPORT("unit_zero_checks");
}
