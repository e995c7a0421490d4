#include "mlscale/kube/cache.h"

namespace mlscale::kube {
namespace {

// The map or list at metadata.<field>, or nullptr.
const Object* MetadataField(const Object& object, const char* field) {
  if (!object.is_object() || !object.contains("metadata")) return nullptr;
  const Object& metadata = object["metadata"];
  if (!metadata.is_object() || !metadata.contains(field)) return nullptr;
  return &metadata[field];
}

template <typename Visit>
void ForEachOwnerUid(const Object& object, Visit visit) {
  const Object* owners = MetadataField(object, "ownerReferences");
  if (owners == nullptr || !owners->is_array()) return;
  for (const Object& owner : *owners) {
    if (owner.is_object() && owner.contains("uid") && owner["uid"].is_string()) visit(owner["uid"].get<std::string>());
  }
}

template <typename Visit>
void ForEachLabel(const Object& object, Visit visit) {
  const Object* labels = MetadataField(object, "labels");
  if (labels == nullptr || !labels->is_object()) return;
  for (const auto& label : labels->items()) {
    if (label.value().is_string()) visit(label.key() + "=" + label.value().get<std::string>());
  }
}

void Erase(std::unordered_map<std::string, std::set<std::string>>& index, const std::string& value,
           const std::string& key) {
  auto entry = index.find(value);
  if (entry == index.end()) return;
  entry->second.erase(key);
  if (entry->second.empty()) index.erase(entry);
}

}  // namespace

void ObjectCache::IndexLocked(const std::string& key, const Object& object) {
  by_namespace_[NamespaceOf(object)].insert(key);
  ForEachOwnerUid(object, [&](const std::string& uid) { by_owner_[uid].insert(key); });
  ForEachLabel(object, [&](const std::string& label) { by_label_[label].insert(key); });
}

void ObjectCache::UnindexLocked(const std::string& key, const Object& object) {
  Erase(by_namespace_, NamespaceOf(object), key);
  ForEachOwnerUid(object, [&](const std::string& uid) { Erase(by_owner_, uid, key); });
  ForEachLabel(object, [&](const std::string& label) { Erase(by_label_, label, key); });
}

ObjectCache::Entry ObjectCache::Store(ObjectPtr object) const {
  Entry entry;
  if (storage_ == Storage::kObjects) {
    entry.object = std::move(object);
  } else {
    entry.packed = Object::to_msgpack(*object);
    entry.packed.shrink_to_fit();
  }
  return entry;
}

ObjectPtr ObjectCache::Load(const Entry& entry) const {
  if (storage_ == Storage::kObjects) return entry.object;
  // Bytes this cache wrote itself from a valid object: decoding cannot fail.
  return std::make_shared<const Object>(Object::from_msgpack(entry.packed));
}

std::vector<ObjectPtr> ObjectCache::LookupLocked(const Index& index, const std::string& value) const {
  std::vector<ObjectPtr> out;
  auto entry = index.find(value);
  if (entry == index.end()) return out;
  out.reserve(entry->second.size());
  for (const std::string& key : entry->second) out.push_back(Load(objects_.at(key)));
  return out;
}

ObjectPtr ObjectCache::Get(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : Load(it->second);
}

std::vector<ObjectPtr> ObjectCache::List() const {
  std::lock_guard lock(mutex_);
  std::vector<ObjectPtr> out;
  out.reserve(objects_.size());
  for (const auto& [key, entry] : objects_) out.push_back(Load(entry));
  return out;
}

std::vector<std::string> ObjectCache::Keys() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  out.reserve(objects_.size());
  for (const auto& [key, entry] : objects_) out.push_back(key);
  return out;
}

std::vector<ObjectPtr> ObjectCache::ByNamespace(const std::string& namespace_name) const {
  std::lock_guard lock(mutex_);
  return LookupLocked(by_namespace_, namespace_name);
}

std::vector<ObjectPtr> ObjectCache::ByOwner(const std::string& owner_uid) const {
  std::lock_guard lock(mutex_);
  return LookupLocked(by_owner_, owner_uid);
}

std::vector<ObjectPtr> ObjectCache::ByLabel(const std::string& label_key, const std::string& label_value) const {
  std::lock_guard lock(mutex_);
  return LookupLocked(by_label_, label_key + "=" + label_value);
}

size_t ObjectCache::Size() const {
  std::lock_guard lock(mutex_);
  return objects_.size();
}

ObjectPtr ObjectCache::Upsert(ObjectPtr object) {
  std::string key = KeyOf(*object);
  Entry stored = Store(object);  // packing outside the lock
  std::lock_guard lock(mutex_);
  auto [it, inserted] = objects_.try_emplace(std::move(key));
  ObjectPtr old;
  if (!inserted) {
    old = Load(it->second);
    UnindexLocked(it->first, *old);
  }
  IndexLocked(it->first, *object);
  it->second = std::move(stored);
  return old;
}

ObjectPtr ObjectCache::Remove(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return nullptr;
  ObjectPtr old = Load(it->second);
  objects_.erase(it);
  UnindexLocked(key, *old);
  return old;
}

std::vector<ObjectPtr> ObjectCache::Replace(std::vector<ObjectPtr> objects) {
  std::unordered_map<std::string, ObjectPtr> latest;  // the last object of each key
  latest.reserve(objects.size());
  for (ObjectPtr& object : objects) {
    std::string key = KeyOf(*object);
    latest[std::move(key)] = std::move(object);
  }
  std::unordered_map<std::string, Entry> fresh;
  fresh.reserve(latest.size());
  for (const auto& [key, object] : latest) fresh.emplace(key, Store(object));
  std::lock_guard lock(mutex_);
  std::vector<ObjectPtr> removed;
  for (const auto& [key, entry] : objects_) {
    if (!fresh.contains(key)) removed.push_back(Load(entry));
  }
  objects_ = std::move(fresh);
  by_namespace_.clear();
  by_owner_.clear();
  by_label_.clear();
  for (const auto& [key, object] : latest) IndexLocked(key, *object);
  return removed;
}

}  // namespace mlscale::kube
