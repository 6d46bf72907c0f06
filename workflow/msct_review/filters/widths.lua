--[[
widths.lua: column widths of wide tables that leave room for each column's longest word.

Pandoc sizes a pipe table whose lines are longer than --columns in proportion to the separator's dashes. In
narrow columns the PDF then prints a long header word ("P(improvement)") over its neighbour and Word breaks
words letter by letter. For every table that has relative widths, this filter recomputes them from the cell
texts: a column asks for its longest line (capped), and is never given less than its longest unbreakable word
(header included; a word longer than LONG characters may break anywhere) plus the cell padding, in characters of a line of about LINE_CHARS characters (table text is
8 pt); what the floors take is taken from the columns with room to spare. When the floors alone exceed the
line, they share it in proportion (the PDF hyphenates what still does not fit). Tables without relative
widths (short tables) are left to the writers' automatic layout.
]]

local LINE_CHARS = 110   -- characters of 8-pt table text on one line of the page
local PAD = 3            -- cell padding, in characters
local CAP = 40           -- a column asks for at most this many characters
local LONG = 24          -- a longer word (a hash, a path) may break anywhere (render.TYPST_STYLE; Word does)...
local LONG_FLOOR = 16    -- ...and asks for this many characters only

local function ulen(s)
  return utf8.len(s) or #s
end

local function longest_word(text)
  local best = 0
  for word in text:gmatch("%S+") do
    -- a line may break after a hyphen or a slash
    for part in (word .. "-"):gmatch("([^-/]*[-/]?)") do
      local len = ulen(part)
      if len > LONG then len = LONG_FLOOR end
      if part ~= "" then best = math.max(best, len) end
    end
  end
  return best
end

local function each_row(tbl, fn)
  for _, row in ipairs(tbl.head.rows) do fn(row) end
  for _, body in ipairs(tbl.bodies) do
    for _, row in ipairs(body.head) do fn(row) end
    for _, row in ipairs(body.body) do fn(row) end
  end
  for _, row in ipairs(tbl.foot.rows) do fn(row) end
end

function Table(tbl)
  local n = #tbl.colspecs
  if n < 2 then return nil end
  for _, spec in ipairs(tbl.colspecs) do
    local w = spec[2]
    if type(w) ~= "number" or w <= 0 then return nil end  -- default widths: automatic layout
  end
  local floor, want = {}, {}
  for j = 1, n do floor[j], want[j] = 1, 1 end
  each_row(tbl, function(row)
    local j = 1
    for _, cell in ipairs(row.cells) do
      local text = pandoc.utils.stringify(cell.contents)
      if j <= n and (cell.col_span or 1) == 1 then
        floor[j] = math.max(floor[j], longest_word(text))
        want[j] = math.max(want[j], math.min(CAP, ulen(text)))
      end
      j = j + (cell.col_span or 1)
    end
  end)
  local total_floor, total_want = 0, 0
  for j = 1, n do
    floor[j] = floor[j] + PAD
    want[j] = math.max(want[j] + PAD, floor[j])
    total_floor = total_floor + floor[j]
    total_want = total_want + want[j]
  end
  local widths = {}
  if total_floor >= LINE_CHARS then
    for j = 1, n do widths[j] = floor[j] / total_floor end
  elseif total_want <= LINE_CHARS then
    for j = 1, n do widths[j] = want[j] / total_want end
  else
    -- every column gets its floor; the rest of the line goes to the columns asking for more, in proportion
    local spare, extra = LINE_CHARS - total_floor, 0
    for j = 1, n do extra = extra + (want[j] - floor[j]) end
    for j = 1, n do
      widths[j] = (floor[j] + spare * (want[j] - floor[j]) / extra) / LINE_CHARS
    end
  end
  for j = 1, n do tbl.colspecs[j] = {tbl.colspecs[j][1], widths[j]} end
  return tbl
end
