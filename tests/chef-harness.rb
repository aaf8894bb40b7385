# A stand-in for Chef Infra Client, for the tests (no Chef gem here): runs one
# recipe of the pez cookbook and records the resources it declares.
#
#   ruby tests/chef-harness.rb COOKBOOK NODE_JSON DATA_BAGS RECIPE OUT [RENDERED]
#
# Loads attributes/default.rb, merges NODE_JSON over it, runs pez::RECIPE
# with include_recipe; data_bag_item reads DATA_BAGS/bag/item.json. Writes
# one JSON object per declared resource to OUT (type, name, properties,
# notifies) and, given RENDERED, the first template rendered with its
# variables. Used by tests/package-test.sh and tests/system-test.sh.
require 'json'
require 'erb'
cookbook, node_json, data_bags, recipe, out, rendered = ARGV

class AutoHash < Hash
  def initialize
    super { |hash, key| hash[key] = AutoHash.new }
  end
end
def plain(value)
  value.is_a?(Hash) ? value.each_with_object({}) { |(k, v), h| h[k] = plain(v) } : value
end
def merge!(into, from)
  from.each { |k, v| v.is_a?(Hash) ? merge!(into[k], v) : into[k] = v }
end
ATTRIBUTES = AutoHash.new
def default
  ATTRIBUTES
end
load File.join(cookbook, 'attributes/default.rb')
merge!(ATTRIBUTES, JSON.parse(File.read(node_json)))
NODE = plain(ATTRIBUTES)
require File.join(cookbook, 'libraries/env_file.rb')

module Chef
  class EncryptedDataBagItem
    def self.load_secret(path)
      "secret of #{path}"
    end
  end
end

class Resource
  attr_reader :properties
  def initialize(type, name)
    @properties = { 'type' => type, 'name' => name, 'notifies' => [] }
  end
  def node
    NODE
  end
  def notifies(action, target, timing = :delayed)
    @properties['notifies'] << [action.to_s, target, timing.to_s]
  end
  def method_missing(name, *args)
    @properties[name.to_s] = args.length == 1 ? args.first : args
  end
  def respond_to_missing?(*)
    true
  end
end

class Run
  attr_reader :resources
  def initialize(cookbook, data_bags)
    @cookbook = cookbook
    @data_bags = data_bags
    @resources = []
    @included = {}
  end
  def node
    NODE
  end
  def include_recipe(name)
    book, recipe = name.split('::')
    raise "include_recipe #{name}: the pez cookbook depends on no other" unless book == 'pez'
    recipe ||= 'default'
    return if @included[recipe]
    @included[recipe] = true
    path = File.join(@cookbook, 'recipes', "#{recipe}.rb")
    instance_eval(File.read(path), path)
  end
  def data_bag_item(bag, item, _secret = nil)
    JSON.parse(File.read(File.join(@data_bags, bag, "#{item}.json")))
  end
  %w(package yum_repository template service execute log remote_file).each do |type|
    define_method(type) do |name, &block|
      resource = Resource.new(type, name)
      resource.instance_eval(&block) if block
      @resources << resource
    end
  end
end

run = Run.new(cookbook, data_bags)
begin
  run.include_recipe("pez::#{recipe}")
rescue StandardError => e
  warn "chef run failed: #{e.message}"
  exit 3
end
File.write(out, run.resources.map { |r| JSON.generate(r.properties) }.join("\n") + "\n")
template = run.resources.find { |r| r.properties['type'] == 'template' }
if rendered && template
  source = File.join(cookbook, 'templates', template.properties['source'])
  holder = Object.new
  template.properties['variables'].each { |k, v| holder.instance_variable_set("@#{k}", v) }
  File.write(rendered, ERB.new(File.read(source), trim_mode: '-').result(holder.instance_eval { binding }))
end
