# %% [markdown]
# # field-of-view

# %%
print(1)
