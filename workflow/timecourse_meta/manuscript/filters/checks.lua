--[[
checks.lua: last checks and Quarto front-matter compatibility before --citeproc runs.

* Every citation key must be in the bibliography: a missing key fails the render with
  "RENDER-ERROR[cite KEY]: citation key 'KEY' not in references.bib" (Pandoc's citeproc would only warn and
  print "(KEY?)"). Cross-references were already replaced by crossref.lua, which must run before this filter.
* No remote resource: an image with an http(s)/ftp URL fails the render (nothing may be fetched at render time).
* Quarto's `authors:` (list of names or of maps with `name`) is mapped to Pandoc's `author:` when `author:` is
  not set, so the writers' templates show the authors.
* `reference-section-title` defaults to "References" and `link-citations` to true.
]]

local errors = {}

local function fail(kind, id, msg)
  table.insert(errors, ("RENDER-ERROR[%s %s]: %s"):format(kind, id, msg))
end

local function walk_meta(v, filter)
  local t = pandoc.utils.type(v)
  if t == "Inlines" or t == "Blocks" or t == "Inline" or t == "Block" then
    return v:walk(filter)
  elseif t == "List" or t == "table" then
    for k, x in pairs(v) do v[k] = walk_meta(x, filter) end
  end
  return v
end

local function bibliography_names(meta)
  local bib = meta.bibliography
  if bib == nil then return nil end
  local names = {}
  local items = (pandoc.utils.type(bib) == "List") and bib or { bib }
  for _, b in ipairs(items) do
    local path = pandoc.utils.stringify(b)
    table.insert(names, (path:gsub("^.*[/\\]", "")))
  end
  return table.concat(names, ", ")
end

local function author_name(a)
  local t = pandoc.utils.type(a)
  if t == "table" or t == "Meta" then
    if a.name ~= nil then
      local nt = pandoc.utils.type(a.name)
      if nt == "table" then
        if a.name.literal then return a.name.literal end
        local given = a.name.given and pandoc.utils.stringify(a.name.given) or ""
        local family = a.name.family and pandoc.utils.stringify(a.name.family) or ""
        return pandoc.Inlines(pandoc.utils.stringify(given .. " " .. family))
      end
      return a.name
    end
    return nil
  end
  return a
end

function Pandoc(doc)
  local meta = doc.meta

  -- Quarto front matter
  if meta.author == nil and meta.authors ~= nil then
    local list = (pandoc.utils.type(meta.authors) == "List") and meta.authors or { meta.authors }
    local authors = pandoc.MetaList({})
    for _, a in ipairs(list) do
      local name = author_name(a)
      if name ~= nil then authors:insert(name) end
    end
    meta.author = authors
  end
  if meta["reference-section-title"] == nil then
    meta["reference-section-title"] = pandoc.MetaInlines({ pandoc.Str("References") })
  end
  if meta["link-citations"] == nil then meta["link-citations"] = true end

  -- remote resources
  local image_filter = {
    Image = function(el)
      if el.src:match("^%a[%w+.-]*://") then
        fail("remote", el.src, "remote resource " .. el.src .. " (nothing may be fetched at render time)")
      end
    end,
  }
  doc.blocks:walk(image_filter)

  -- citation keys
  local cited, order = {}, {}
  local cite_filter = {
    Cite = function(el)
      for _, c in ipairs(el.citations) do
        if not cited[c.id] then cited[c.id] = true; table.insert(order, c.id) end
      end
    end,
  }
  doc.blocks:walk(cite_filter)
  for k, v in pairs(meta) do
    if k ~= "nocite" then walk_meta(v, cite_filter) end
  end
  if #order > 0 then
    local bibname = bibliography_names(meta)
    if bibname == nil then
      for _, id in ipairs(order) do
        fail("cite", id, ("citation key '%s' cannot be resolved: no bibliography given"):format(id))
      end
    else
      local known = {}
      for _, ref in ipairs(pandoc.utils.references(doc)) do known[ref.id] = true end
      for _, id in ipairs(order) do
        if not known[id] then
          fail("cite", id, ("citation key '%s' not in %s"):format(id, bibname))
        end
      end
    end
  end

  if #errors > 0 then error(table.concat(errors, "\n"), 0) end
  doc.meta = meta
  return doc
end
