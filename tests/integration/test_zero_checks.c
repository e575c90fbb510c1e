/*
 * test_zero_checks.c: an integration-harness test that runs no check.
 * th_finish() must report it as failed (ctest expects it to fail:
 * WILL_FAIL), since a test that checked nothing proves nothing.
 */
#include "harness.h"

int main(void)
{
    return th_finish();
}
