--[[
vars.lua: put the values of {{< var key >}} shortcodes into the document.

The Python pre-pass (timecourse_meta.manuscript.prepass) has already checked every shortcode against the variables file (so it
can name the file and line of an unknown key) and replaced each one by a plain-word marker XVARnnnnnnX, which
survives Pandoc's Markdown reader everywhere: running text, pipe tables, figure and table captions, the YAML
front matter (title, abstract), link targets, image paths, code and math. This filter swaps each marker for its
value, read from the JSON file named by the environment variable TIMECOURSE_META_RENDER_VARS:

  { "XVAR000001X": {"key": "outcome_a.m6.delta", "value": "−2.1", "title": "outcome_a.m6.delta — from ..."}, ... }

In HTML a value in running text becomes <span class="var" data-key="KEY" title="TITLE">VALUE</span> (the
title is the lineage shown on hover); in other formats it is plain text. Inside code, math, raw output,
link targets and image paths the value is substituted as plain text.

Every marker must be placed: a marker that was inserted but never met (a place this filter does not reach)
fails the render instead of silently dropping a number.
]]

local MARK = "XVAR%d%d%d%d%d%dX"

local vars_path = os.getenv("TIMECOURSE_META_RENDER_VARS")
local vars = {}
if vars_path and vars_path ~= "" then
  local fh = assert(io.open(vars_path, "r"), "RENDER-ERROR[internal vars]: cannot read " .. vars_path)
  local content = fh:read("a")
  fh:close()
  vars = pandoc.json.decode(content, false)
end

local seen = {}
local is_html = FORMAT:match("html") ~= nil

local function entry(marker)
  local e = vars[marker]
  if e == nil then
    error("RENDER-ERROR[internal " .. marker .. "]: marker " .. marker .. " has no value", 0)
  end
  seen[marker] = true
  return e
end

-- plain-text substitution (code, math, raw, URLs, metadata strings)
local function sub_text(s)
  if type(s) ~= "string" or not s:find(MARK) then return s end
  return (s:gsub(MARK, function(m) return entry(m).value end))
end

-- a value as inlines: words as Str, runs of blanks as Space
local function text_inlines(s)
  local out = pandoc.Inlines({})
  local first = true
  for word in s:gmatch("%S+") do
    if not first then out:insert(pandoc.Space()) end
    out:insert(pandoc.Str(word))
    first = false
  end
  return out
end

local function value_inlines(e)
  local content = text_inlines(e.value)
  if is_html then
    -- a list of pairs, not a table keyed by name: keeps the attribute order (and the output) stable
    local attrs = { { "data-key", e.key } }
    if e.title and e.title ~= "" then table.insert(attrs, { "title", e.title }) end
    return pandoc.Inlines({ pandoc.Span(content, pandoc.Attr("", { "var" }, attrs)) })
  end
  return content
end

local function Str(el)
  local text = el.text
  if not text:find(MARK) then return nil end
  local out = pandoc.Inlines({})
  local pos = 1
  while true do
    local s, e = text:find(MARK, pos)
    if not s then break end
    if s > pos then out:insert(pandoc.Str(text:sub(pos, s - 1))) end
    out:extend(value_inlines(entry(text:sub(s, e))))
    pos = e + 1
  end
  if pos <= #text then out:insert(pandoc.Str(text:sub(pos))) end
  return out
end

local function sub_attr(el)
  if el.attr then
    el.identifier = sub_text(el.identifier)
    for k, v in pairs(el.attributes) do el.attributes[k] = sub_text(v) end
  end
end

local function text_el(el)
  el.text = sub_text(el.text)
  sub_attr(el)
  return el
end

local filter = {
  Str = Str,
  Code = text_el,
  CodeBlock = text_el,
  RawInline = text_el,
  RawBlock = text_el,
  Math = function(el) el.text = sub_text(el.text); return el end,
  Image = function(el) el.src = sub_text(el.src); el.title = sub_text(el.title); sub_attr(el); return el end,
  Link = function(el) el.target = sub_text(el.target); el.title = sub_text(el.title); sub_attr(el); return el end,
  Span = function(el) sub_attr(el); return el end,
  Div = function(el) sub_attr(el); return el end,
  Header = function(el) sub_attr(el); return el end,
}

-- metadata values: Inlines/Blocks are walked, strings substituted, lists and maps recursed
local function walk_meta(v)
  local t = pandoc.utils.type(v)
  if t == "Inlines" or t == "Blocks" then
    return v:walk(filter)
  elseif t == "Inline" or t == "Block" then
    return v:walk(filter)
  elseif t == "string" then
    return sub_text(v)
  elseif t == "List" or t == "table" or t == "Meta" then
    for k, x in pairs(v) do v[k] = walk_meta(x) end
    return v
  end
  return v
end

function Pandoc(doc)
  doc.blocks = doc.blocks:walk(filter)
  for k, v in pairs(doc.meta) do doc.meta[k] = walk_meta(v) end
  local missing = {}
  for marker, e in pairs(vars) do
    if not seen[marker] then
      table.insert(missing, ("RENDER-ERROR[var-unplaced %s]: variable '%s' (%s) could not be placed in the document")
        :format(e.key, e.key, e.where or "?"))
    end
  end
  if #missing > 0 then
    table.sort(missing)
    error(table.concat(missing, "\n"), 0)
  end
  return doc
end
