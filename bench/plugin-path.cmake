# wf_bench_plugin_path(): writes <build>/bench/bench-plugin.txt, the path of
# the sample_activities plugin if the project has that target, else empty.
function(wf_bench_plugin_path)
  set(out ${CMAKE_BINARY_DIR}/bench/bench-plugin.txt)
  if(TARGET sample_activities)
    file(GENERATE OUTPUT ${out} CONTENT "$<TARGET_FILE:sample_activities>\n")
  else()
    file(GENERATE OUTPUT ${out} CONTENT "")
  endif()
endfunction()
