# The warning set of STYLE.md (after curl's PickyWarnings and pgbouncer's
# list). WF_WERROR turns them into errors; CI sets it.
set(WF_WARNING_FLAGS
  -Wall -Wextra -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
  -Wold-style-definition -Wpointer-arith -Wundef -Wshadow -Wwrite-strings
  -Wcast-qual -Wno-unused-parameter -Wno-missing-field-initializers)
add_compile_options(${WF_WARNING_FLAGS})
if(WF_WERROR)
  set(CMAKE_COMPILE_WARNING_AS_ERROR ON)
endif()
