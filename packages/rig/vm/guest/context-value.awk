# Prints the value of the variable named by `want` from an OpenNebula context.sh, WITHOUT executing it.
# OpenNebula writes KEY='value' lines; a single quote inside a value is written as '\'' and a value may
# span lines. Exit status 1 when the variable is absent. (mawk/gawk/busybox awk; \047 is a single quote.)
BEGIN { q = "\047"; inval = 0; found = 0 }
{
  line = $0
  if (!inval) {
    if (!match(line, /^[A-Za-z_][A-Za-z0-9_]*=/)) next
    key = substr(line, 1, RLENGTH - 1)
    rest = substr(line, RLENGTH + 1)
    if (substr(rest, 1, 1) != q) next
    rest = substr(rest, 2)
    val = ""
    inval = 1
  } else {
    rest = line
    val = val "\n"
  }
  while (inval) {
    i = index(rest, q)
    if (i == 0) { val = val rest; break }
    val = val substr(rest, 1, i - 1)
    rest = substr(rest, i + 1)
    if (substr(rest, 1, 3) == "\\" q q) { val = val q; rest = substr(rest, 4); continue }
    inval = 0
    if (key == want) { value = val; found = 1 }
  }
}
END {
  if (!found) exit 1
  printf "%s\n", value
}
