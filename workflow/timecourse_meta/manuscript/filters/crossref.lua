--[[
crossref.lua: number figures and tables and resolve @fig-/@tbl- cross-references (Quarto syntax).

* A figure is a Pandoc Figure block whose identifier starts with "fig-" (what `![Caption](path){#fig-x}` alone
  in a paragraph becomes), or a Quarto figure div `::: {#fig-x}` whose last paragraph is the caption.
* A table is a Table whose identifier starts with "tbl-" (`: Caption {#tbl-x}` after a pipe table), or a div
  `::: {#tbl-x}` holding one table, whose last paragraph is the caption.
* Figures and tables are numbered separately, in document order. The caption gets the label
  ("Figure 1: ...", "Table 1: ...") as text, so the numbering is the same in HTML, DOCX and PDF (the Typst
  output switches Typst's own figure numbering off so it is not doubled).
* `@fig-x`, `[@fig-x]`, `[see @tbl-y, top]` become "Figure N" / "Table N" (a link in HTML and PDF);
  `[-@fig-x]` gives the number alone. Several in one bracket are joined with commas.

An unknown or duplicated identifier, or a bracket mixing a cross-reference with a literature citation, fails
the render: errors are raised as lines "RENDER-ERROR[kind id]: message" that timecourse_meta.manuscript.render turns into a
RenderError naming the source line.
]]

local KINDS = {
  fig = { label = "Figure" },
  tbl = { label = "Table" },
}
-- prefixes Quarto reserves for cross-references; only fig and tbl are supported here
local RESERVED = { fig = true, tbl = true, eq = true, sec = true, lst = true, thm = true, lem = true }

local numbers = {}       -- id -> number
local counters = { fig = 0, tbl = 0 }
local errors = {}

local function fail(kind, id, msg)
  table.insert(errors, ("RENDER-ERROR[%s %s]: %s"):format(kind, id, msg))
end

local function prefix_of(id)
  return id and id:match("^(%a+)%-")
end

local function label_inlines(kind, n)
  return pandoc.Inlines({ pandoc.Str(KINDS[kind].label), pandoc.Space(), pandoc.Str(tostring(n)) })
end

local function register(kind, id)
  if numbers[id] then
    fail("xref-duplicate", id, "duplicate cross-reference id #" .. id)
    return nil
  end
  counters[kind] = counters[kind] + 1
  numbers[id] = counters[kind]
  return counters[kind]
end

-- prefix "Figure N: " to a Caption (pandoc.Caption with .long Blocks)
local function label_caption(caption, kind, n)
  local label = label_inlines(kind, n)
  local long = caption.long
  if #long > 0 and (long[1].t == "Plain" or long[1].t == "Para") then
    local first = long[1]
    if #first.content > 0 then
      label[#label] = pandoc.Str(tostring(n) .. ":")
      label:insert(pandoc.Space())
    end
    first.content = label .. first.content
  else
    long:insert(1, pandoc.Plain(label))
  end
  caption.long = long
  return caption
end

local function caption_from_blocks(blocks)
  -- Quarto div form: the last paragraph is the caption
  local last = blocks[#blocks]
  if last and last.t == "Para" then
    local body = pandoc.Blocks({})
    for i = 1, #blocks - 1 do body:insert(blocks[i]) end
    return body, pandoc.Blocks({ pandoc.Plain(last.content) })
  end
  return blocks, pandoc.Blocks({})
end

local number_filter = {
  traverse = "topdown",
  Figure = function(el)
    local kind = prefix_of(el.identifier)
    if kind == "fig" then
      local n = register("fig", el.identifier)
      if n then el.caption = label_caption(el.caption, "fig", n) end
      return el
    end
  end,
  Table = function(el)
    local kind = prefix_of(el.identifier)
    if kind == "tbl" then
      local n = register("tbl", el.identifier)
      if n then el.caption = label_caption(el.caption, "tbl", n) end
      return el
    end
  end,
  Div = function(el)
    local kind = prefix_of(el.identifier)
    if kind == "fig" then
      local body, cap = caption_from_blocks(el.content)
      local n = register("fig", el.identifier)
      local caption = pandoc.Caption(cap)
      if n then caption = label_caption(caption, "fig", n) end
      return pandoc.Figure(body, caption, pandoc.Attr(el.identifier, el.classes, el.attributes)), false
    elseif kind == "tbl" then
      local body, cap = caption_from_blocks(el.content)
      local tables = {}
      for _, b in ipairs(body) do if b.t == "Table" then table.insert(tables, b) end end
      if #tables ~= 1 then
        fail("xref-table", el.identifier, "table div #" .. el.identifier .. " must hold exactly one table")
        return el, false
      end
      local tbl = tables[1]
      tbl.identifier = el.identifier
      if #cap > 0 then tbl.caption = pandoc.Caption(cap) end
      local n = register("tbl", el.identifier)
      if n then tbl.caption = label_caption(tbl.caption, "tbl", n) end
      return tbl, false
    end
  end,
}

local linkable = FORMAT:match("html") or FORMAT == "typst"

local ref_filter = {
  Cite = function(el)
    local xrefs, others = 0, 0
    for _, c in ipairs(el.citations) do
      if RESERVED[prefix_of(c.id) or ""] then xrefs = xrefs + 1 else others = others + 1 end
    end
    if xrefs == 0 then return nil end
    if others > 0 then
      local ids = {}
      for _, c in ipairs(el.citations) do table.insert(ids, "@" .. c.id) end
      fail("xref-mixed", el.citations[1].id,
        "a bracket mixes cross-references and citations: [" .. table.concat(ids, "; ") .. "]")
      return nil
    end
    local out = pandoc.Inlines({})
    for i, c in ipairs(el.citations) do
      local kind = prefix_of(c.id)
      local n = numbers[c.id]
      if not KINDS[kind] or not n then
        fail("xref", c.id, "unresolved cross-reference @" .. c.id)
      else
        if i > 1 then out:insert(pandoc.Str(",")); out:insert(pandoc.Space()) end
        if #c.prefix > 0 then out:extend(c.prefix); out:insert(pandoc.Space()) end
        local text
        if c.mode == "SuppressAuthor" then
          text = pandoc.Inlines({ pandoc.Str(tostring(n)) })
        else
          text = label_inlines(kind, n)
        end
        if linkable then
          out:insert(pandoc.Link(text, "#" .. c.id))
        else
          out:extend(text)
        end
        if #c.suffix > 0 then out:extend(c.suffix) end
      end
    end
    return out
  end,
}

local function walk_meta(v, filter)
  local t = pandoc.utils.type(v)
  if t == "Inlines" or t == "Blocks" or t == "Inline" or t == "Block" then
    return v:walk(filter)
  elseif t == "List" or t == "table" then
    for k, x in pairs(v) do v[k] = walk_meta(x, filter) end
  end
  return v
end

function Pandoc(doc)
  doc.blocks = doc.blocks:walk(number_filter)
  doc.blocks = doc.blocks:walk(ref_filter)
  for k, v in pairs(doc.meta) do doc.meta[k] = walk_meta(v, ref_filter) end
  if #errors > 0 then error(table.concat(errors, "\n"), 0) end
  if FORMAT == "typst" then
    -- the captions carry the label as text; switch Typst's own figure numbering off
    local hi = doc.meta["header-includes"]
    local raw = pandoc.MetaBlocks({ pandoc.RawBlock("typst", "#set figure(numbering: none)") })
    if hi == nil then
      doc.meta["header-includes"] = pandoc.MetaList({ raw })
    elseif pandoc.utils.type(hi) == "List" then
      hi:insert(raw)
      doc.meta["header-includes"] = hi
    else
      doc.meta["header-includes"] = pandoc.MetaList({ hi, raw })
    end
  end
  return doc
end
