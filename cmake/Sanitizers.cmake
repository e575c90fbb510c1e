# WF_SANITIZE="address;undefined" builds everything with those sanitizers,
# aborting on the first finding (Redis SANITIZER=, pgbouncer ubsan).
if(WF_SANITIZE)
  string(REPLACE ";" "," _wf_san "${WF_SANITIZE}")
  add_compile_options(-fsanitize=${_wf_san} -fno-sanitize-recover=all
    -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${_wf_san})
endif()
