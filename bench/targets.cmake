# targets.cmake: the bench helpers (see CMakeLists.txt beside this file).
# Included by bench/CMakeLists.txt; the outputs go to <build>/bench/.
set(WF_BENCH_SRC ${CMAKE_CURRENT_LIST_DIR})
set(WF_BENCH_OUT ${CMAKE_BINARY_DIR}/bench)

add_executable(bench_http ${WF_BENCH_SRC}/bench_http.c ${WF_BENCH_SRC}/fire.c ${WF_BENCH_SRC}/stats.c)
target_link_libraries(bench_http PRIVATE PkgConfig::CURL Threads::Threads)

add_executable(bare_mhd ${WF_BENCH_SRC}/bare_mhd.c)
target_link_libraries(bare_mhd PRIVATE PkgConfig::MHD Threads::Threads)

add_executable(bench_baseline ${WF_BENCH_SRC}/bench_baseline.c ${WF_BENCH_SRC}/stats.c)
target_include_directories(bench_baseline PRIVATE ${WF_BENCH_SRC}/../include)
target_link_libraries(bench_baseline PRIVATE PkgConfig::PQ PkgConfig::CJSON ${CMAKE_DL_LIBS})

add_executable(bench_dlopen ${WF_BENCH_SRC}/bench_dlopen.c)
target_include_directories(bench_dlopen PRIVATE ${WF_BENCH_SRC}/../include)
target_link_libraries(bench_dlopen PRIVATE PkgConfig::CJSON ${CMAKE_DL_LIBS})

add_executable(bench_chan ${WF_BENCH_SRC}/bench_chan.c ${WF_BENCH_SRC}/stats.c)
target_link_libraries(bench_chan PRIVATE wf_common)

# Core's asynchronous PostgreSQL layer: group commit against one commit per row.
add_executable(bench_dbq ${WF_BENCH_SRC}/bench_dbq.c ${WF_BENCH_SRC}/stats.c)
target_link_libraries(bench_dbq PRIVATE wf_roles PkgConfig::PQ Threads::Threads)

# Re-entering workflow code: replay (worker/runs.c's algorithm) against
# coroutines on guarded mmap'd stacks, on the engine's test plugin (dlopened
# at run time: bench_turns <build>/bench/engine_recorder.so).
add_executable(bench_turns ${WF_BENCH_SRC}/bench_turns.c ${WF_BENCH_SRC}/stats.c)
target_include_directories(bench_turns PRIVATE ${WF_BENCH_SRC}/../include)
target_link_libraries(bench_turns PRIVATE PkgConfig::CJSON ${CMAKE_DL_LIBS})
set_target_properties(bench_turns PROPERTIES C_STANDARD 17)

# The run engine's test plugin (tests/plugins/engine_recorder.c: workflows
# one-step and five-steps, activity noop, ...), built here too because the
# bench configures with BUILD_TESTING=OFF, so tests/ is not part of its build.
add_library(bench_engine_recorder MODULE ${WF_BENCH_SRC}/../tests/plugins/engine_recorder.c)
target_include_directories(bench_engine_recorder PRIVATE ${WF_BENCH_SRC}/../include)
target_link_libraries(bench_engine_recorder PRIVATE PkgConfig::CJSON)
set_target_properties(bench_engine_recorder PROPERTIES PREFIX "" OUTPUT_NAME engine_recorder)

set_target_properties(bench_http bare_mhd bench_engine_recorder bench_baseline bench_dlopen bench_chan bench_dbq
  bench_turns
  PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${WF_BENCH_OUT} LIBRARY_OUTPUT_DIRECTORY ${WF_BENCH_OUT})

add_custom_target(bench_tools
  DEPENDS bench_http bare_mhd bench_baseline bench_dlopen bench_chan bench_dbq bench_turns
  bench_engine_recorder)
