-- ArgoCD health of a linkmcp.io AiTask: Degraded when its last run failed (status.phase
-- Failed, with the run's summary) or its Ready condition is False (with its message);
-- Progressing while the controller has not observed the latest generation or Ready is
-- Unknown; otherwise Healthy, also while it waits for its next run or is suspended.
local hs = {}
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the linkmcp controller"
  return hs
end
local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end
if obj.status.phase == "Failed" then
  hs.status = "Degraded"
  local message = obj.status.lastResult
  if message == nil or message == "" then
    message = "The last run failed"
  end
  hs.message = message
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. tostring(generation)
  return hs
end
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    hs.message = ready.message
  else
    hs.message = "Waiting for the Ready condition"
  end
  return hs
end
if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = ready.message or ready.reason or ""
  return hs
end
hs.status = "Healthy"
local phase = obj.status.phase or "Pending"
if obj.status.lastResult ~= nil and obj.status.lastResult ~= "" then
  hs.message = phase .. ": " .. obj.status.lastResult
else
  hs.message = phase
end
return hs
