# The code map (docs/architecture.md) as CMake knows it: each module's folder and
# the targets built from it. The ctest entry check_module_includes (label "build") checks
# that every module-qualified include in a module's folder names a module whose
# target the includer's targets link, so the layering is enforced by the targets'
# dependencies, not by convention.
#
#   plng_module(<folder> TARGETS <target>... [INCLUDES_ANYTHING])
#
# <folder> is relative to the source root; a folder inside another module's is a
# module of its own. INCLUDES_ANYTHING: a top module (tests, benchmarks) whose
# files may include any module; its TARGETS are what others may link to use it.

function(plng_module folder)
  cmake_parse_arguments(M "INCLUDES_ANYTHING" "" "TARGETS" ${ARGN})
  if(NOT M_TARGETS AND NOT M_INCLUDES_ANYTHING)
    message(FATAL_ERROR "plng_module(${folder}): no TARGETS")
  endif()
  foreach(target ${M_TARGETS})
    if(NOT TARGET ${target})
      message(FATAL_ERROR "plng_module(${folder}): no target ${target}")
    endif()
  endforeach()
  list(JOIN M_TARGETS " " targets)
  set(anything 0)
  if(M_INCLUDES_ANYTHING)
    set(anything 1)
  endif()
  set_property(GLOBAL APPEND PROPERTY PLNG_MODULE_LINES "module\t${folder}\t${targets}\t${anything}")
endfunction()

# Every target defined in `dir` and the folders below it.
function(_plng_targets_below dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub ${subdirs})
    _plng_targets_below(${sub} below)
    list(APPEND targets ${below})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

# plng_write_module_map(<file>): writes the module table and every project
# target's direct links (LINK_LIBRARIES and INTERFACE_LINK_LIBRARIES) to <file>,
# for cmake/check_module_includes.py (one line each, fields separated by tabs, list
# items by spaces). Call it last, once every target has its links.
function(plng_write_module_map file)
  get_property(lines GLOBAL PROPERTY PLNG_MODULE_LINES)
  set(text "# module<TAB>folder<TAB>targets<TAB>includes anything; target<TAB>name<TAB>links\n")
  foreach(line IN LISTS lines)
    string(APPEND text "${line}\n")
  endforeach()
  _plng_targets_below(${PROJECT_SOURCE_DIR} targets)
  foreach(target ${targets})
    set(links "")
    foreach(property LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
      get_target_property(items ${target} ${property})
      if(items)
        list(APPEND links ${items})
      endif()
    endforeach()
    list(JOIN links " " links)
    string(APPEND text "target\t${target}\t${links}\n")
  endforeach()
  file(WRITE ${file} "${text}")
endfunction()
