# driver/ui/embed.cmake -- turns a file into a C array, so the web UI ships
# inside the binary without xxd. Run as
#   cmake -DIN=index.html -DOUT=ui_index.c -DNAME=http_ui_index -P embed.cmake
# It defines `const unsigned char NAME[]` (the bytes, then a NUL that is not
# counted) and `const size_t NAME_len`.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" bytes "${bytes}")
get_filename_component(inname "${IN}" NAME)
file(WRITE "${OUT}"
  "/* Generated from ${inname} by embed.cmake: do not edit. */\n"
  "#include <stddef.h>\n"
  "extern const unsigned char ${NAME}[];\n"
  "extern const size_t ${NAME}_len;\n"
  "const unsigned char ${NAME}[] = {\n${bytes}0x00};\n"
  "const size_t ${NAME}_len = ${len};\n")
