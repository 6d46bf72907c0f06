--[[
widths.lua: column widths of wide tables that leave room for each column's longest word and give the rest of
the line to the columns with the most text.

Pandoc sizes a pipe table whose lines are longer than --columns in proportion to the separator's dashes. In
narrow columns the PDF then prints a long header word ("P(improvement)") over its neighbour and Word breaks
words letter by letter. For every table that has relative widths, this filter recomputes them from the cell
texts, in characters of a line of LINE_CHARS characters of 8-pt table text:
* each column's floor is its longest unbreakable word (a word longer than LONG characters, such as a hash, may
  break anywhere and asks for LONG_FLOOR), or its longest cell of at most SHORT characters, plus PAD for the cell
  padding; header words count in full in DOCX, while the PDF, which hyphenates table text, lets a header word
  longer than HEAD_WORD characters (and than the column's cells need) wrap inside its column;
* when the floors fit in the line they are kept in full; when they do not, the widest floors are cut to a common
  cap so that the floors fill FLOOR_SHARE of the line (the PDF hyphenates the words that no longer fit; short
  words such as study labels keep their room);
* the rest of the line goes to the columns whose average cell is longer than their floor, in proportion to the
  excess (none beyond its longest cell), so that a long statement gets the room and a column of short labels
  does not. A table whose every cell fits on one line gives each column its longest cell.
Tables without relative widths (short tables) are left to the writers' automatic layout.
]]

-- characters of 8-pt table text on one line: PDF 432 pt at 3.3 pt a character; DOCX 468 pt in whatever sans
-- serif the reader's word processor substitutes (up to 4.4 pt a character)
local LINE_CHARS = FORMAT == "docx" and 105 or 128
local PAD = 3            -- cell padding and slack for wide letters, in characters
local FLOOR_SHARE = 0.8  -- floors that overfill the line are cut to fill this share of it
local SHORT = 12         -- a cell this short ("not sampled", "Barbado 2018") stays on one line
local HYPHENATES = FORMAT == "typst"  -- render.TYPST_STYLE hyphenates table text; Word output is not relied on to
local HEAD_WORD = 8      -- in the PDF a header word longer than this (and than the column's cells) is hyphenated
local LONG = 24          -- a longer word (a hash, a path) may break anywhere (render.TYPST_STYLE)...
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
      best = math.max(best, len)
    end
  end
  return best
end

-- inline code is set in a monospace font about a fifth wider per character than the table's text
local function code_extra(blocks)
  local chars = 0
  blocks:walk({ Code = function(c) chars = chars + ulen(c.text) end })
  return math.ceil(0.2 * chars)
end

local function each_row(tbl, fn)
  for _, row in ipairs(tbl.head.rows) do fn(row, true) end
  for _, body in ipairs(tbl.bodies) do
    for _, row in ipairs(body.head) do fn(row, true) end
    for _, row in ipairs(body.body) do fn(row, false) end
  end
  for _, row in ipairs(tbl.foot.rows) do fn(row, true) end
end

function Table(tbl)
  local n = #tbl.colspecs
  if n < 2 then return nil end
  for _, spec in ipairs(tbl.colspecs) do
    local w = spec[2]
    if type(w) ~= "number" or w <= 0 then return nil end  -- default widths: automatic layout
  end
  local floor, head, total, count, want = {}, {}, {}, {}, {}
  for j = 1, n do floor[j], head[j], total[j], count[j], want[j] = 1, 0, 0, 0, 1 end
  each_row(tbl, function(row, is_head)
    local j = 1
    for _, cell in ipairs(row.cells) do
      local span = cell.col_span or 1
      if j <= n and span == 1 then
        local text = pandoc.utils.stringify(cell.contents)
        local len = ulen(text) + code_extra(cell.contents)
        if is_head then
          head[j] = math.max(head[j], longest_word(text))
        else
          floor[j] = math.max(floor[j], longest_word(text))
          if len <= SHORT then floor[j] = math.max(floor[j], len) end
        end
        if not is_head then
          total[j] = total[j] + len
          count[j] = count[j] + 1
          want[j] = math.max(want[j], len)
        end
      end
      j = j + span
    end
  end)
  local floors, wants, widths = 0, 0, {}
  for j = 1, n do
    -- the PDF hyphenates a long header word ("P(improvement)") rather than widen a column of short cells for it
    local h = head[j]
    if HYPHENATES then h = math.min(h, math.max(HEAD_WORD, floor[j])) end
    floor[j] = math.max(floor[j], h) + PAD
    want[j] = math.max(want[j] + PAD, floor[j])
    floors = floors + floor[j]
    wants = wants + want[j]
  end
  if wants <= LINE_CHARS then
    -- every cell fits on one line: each column its longest cell, the rest of the line in proportion
    for j = 1, n do widths[j] = want[j] / wants end
  else
    if floors > LINE_CHARS then
      -- water-filling: the largest cap c with sum(min(floor, c)) <= FLOOR_SHARE * LINE_CHARS
      local target, sorted = FLOOR_SHARE * LINE_CHARS, {}
      for j = 1, n do sorted[j] = floor[j] end
      table.sort(sorted)
      local cap, below = target / n, 0
      for i = 1, n do
        local c = (target - below) / (n - i + 1)
        if c <= sorted[i] then cap = c break end
        below = below + sorted[i]
        cap = sorted[i]
      end
      floors = 0
      for j = 1, n do
        floor[j] = math.min(floor[j], cap)
        floors = floors + floor[j]
      end
    end
    -- the spare goes to the columns with more text than their floor, in proportion to their average cell's
    -- excess, no column beyond its longest cell; what that leaves goes in proportion to what is still wanted
    local spare, excess, excess_total = LINE_CHARS - floors, {}, 0
    for j = 1, n do
      widths[j] = floor[j]
      local mean = count[j] > 0 and total[j] / count[j] + PAD or 0
      excess[j] = math.max(0, mean - floor[j])
      excess_total = excess_total + excess[j]
    end
    local left = spare
    for j = 1, n do
      local give = excess_total > 0 and math.min(spare * excess[j] / excess_total, want[j] - floor[j]) or 0
      widths[j] = widths[j] + give
      left = left - give
    end
    local still = 0
    for j = 1, n do still = still + (want[j] - widths[j]) end
    for j = 1, n do
      widths[j] = (widths[j] + (still > 0 and left * (want[j] - widths[j]) / still or left / n)) / LINE_CHARS
    end
  end
  for j = 1, n do tbl.colspecs[j] = {tbl.colspecs[j][1], widths[j]} end
  return tbl
end
