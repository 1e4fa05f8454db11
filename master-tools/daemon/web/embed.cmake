# SPDX-License-Identifier: GPL-2.0-or-later
# Turns the dashboard's files into C arrays (web_assets.c/.h): netflashd
# serves them from memory, with no files to install or find at run time.
#   cmake -DSRC=dir -DOUT=dir -P embed.cmake
set(names index.html app.js style.css)
set(h "/* Generated from master-tools/daemon/web by embed.cmake. */\n#include <stddef.h>\n")
set(c "/* Generated from master-tools/daemon/web by embed.cmake. */\n#include \"web_assets.h\"\n")
foreach(n ${names})
  string(MAKE_C_IDENTIFIER "web_${n}" id)
  file(READ "${SRC}/${n}" hex HEX)
  string(LENGTH "${hex}" hl)
  math(EXPR len "${hl} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND h "extern const char ${id}[];\nextern const size_t ${id}_len;\n")
  string(APPEND c "const char ${id}[] = { ${bytes} 0 };\nconst size_t ${id}_len = ${len};\n")
endforeach()
file(WRITE "${OUT}/web_assets.h" "${h}")
file(WRITE "${OUT}/web_assets.c" "${c}")
