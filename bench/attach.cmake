# attach.cmake: lets bench/run build the bench helpers whether or not the
# top-level CMakeLists.txt adds bench/ itself. bench/run configures with
#   -DCMAKE_PROJECT_INCLUDE=<this file>
# which CMake includes right after project(), before the pkg-config targets
# the helpers need exist; so the targets are defined at the end of the
# top-level directory instead (subdirectories cannot be added then, hence
# include()), and only if the top level has not added bench/ already.
include(${CMAKE_CURRENT_LIST_DIR}/plugin-path.cmake)
function(wf_bench_attach)
  if(NOT TARGET bench_http)
    include(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/targets.cmake)
    wf_bench_plugin_path()
  endif()
endfunction()
if(CMAKE_VERSION VERSION_LESS 3.19)
  message(FATAL_ERROR "bench/attach.cmake needs CMake 3.19 (cmake_language DEFER)")
endif()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL wf_bench_attach)
