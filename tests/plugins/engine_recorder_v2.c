/*
 * engine_recorder_v2.c: version 2 of the plugin "engine-recorder", for the
 * code-version tests: a run started on version 1 must finish on version 1
 * after version 2 is deployed and the worker restarted. The same names as
 * engine_recorder.c, built from the same engine_recorder.h; only the
 * outputs' "version" (2) and the " v2" that ends each line record writes
 * differ, so a test sees which code ran each step and each workflow.
 */
#define ER_VERSION 2
#include "engine_recorder.h"
